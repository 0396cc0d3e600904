#include "timefmt.h"

#include <string.h>

static const char wdays[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Writes v as exactly n decimal digits (v is reduced modulo 10^n). */
static char *put_digits(char *p, int v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + n;
}

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

/* gmtime_r without its lock: glibc's takes the time zone lock even for
 * UTC, and every answer with a timestamp waited on it (a tenth of a cached
 * read's futex calls). Days to a civil date after H. Hinnant's
 * days_from_civil inverse; pure arithmetic, any time_t a 64-bit year
 * holds. */
void timefmt_utc(time_t t, struct tm *tm)
{
	long long days = (long long)t / 86400, secs = (long long)t % 86400;
	long long era, doe, yoe, doy, mp, y;

	if (secs < 0)
		secs += 86400, days--;
	memset(tm, 0, sizeof(*tm));
	tm->tm_hour = (int)(secs / 3600);
	tm->tm_min = (int)(secs / 60 % 60);
	tm->tm_sec = (int)(secs % 60);
	tm->tm_wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
	days += 719468;                          /* from 0000-03-01 */
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;                                   /* [0, 146096] */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
	mp = (5 * doy + 2) / 153;                                    /* March = 0 */
	y = yoe + era * 400 + (mp >= 10);
	tm->tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	tm->tm_mon = (int)(mp < 10 ? mp + 2 : mp - 10);
	tm->tm_year = (int)(y - 1900);
	tm->tm_yday = (int)(mp >= 10 ? doy - 306 : doy + 59 + ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

/* Writes "YYYY-MM-DDTHH:MM:SS" and returns the end. */
static char *put_datetime(char *p, const struct tm *tm)
{
	p = put_digits(p, tm->tm_year + 1900, 4);
	*p++ = '-';
	p = put_digits(p, tm->tm_mon + 1, 2);
	*p++ = '-';
	p = put_digits(p, tm->tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, tm->tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, tm->tm_min, 2);
	*p++ = ':';
	return put_digits(p, tm->tm_sec, 2);
}

char *timefmt_rfc3339(time_t t, char *out)
{
	struct tm tm;
	char *p;

	timefmt_utc(t, &tm);
	p = put_datetime(out, &tm);
	*p++ = 'Z';
	*p = '\0';
	return out;
}

char *timefmt_rfc3339_ms(const struct timespec *ts, char *out)
{
	struct tm tm;
	char *p;

	timefmt_utc(ts->tv_sec, &tm);
	p = put_datetime(out, &tm);
	*p++ = '.';
	p = put_digits(p, (int)(ts->tv_nsec / 1000000), 3);
	*p++ = 'Z';
	*p = '\0';
	return out;
}

char *timefmt_imf_fixdate(time_t t, char *out)
{
	struct tm tm;
	char *p;

	timefmt_utc(t, &tm);
	p = put_str(out, wdays[tm.tm_wday % 7]);
	p = put_str(p, ", ");
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = ' ';
	p = put_str(p, months[tm.tm_mon % 12]);
	*p++ = ' ';
	p = put_digits(p, tm.tm_year + 1900, 4);
	*p++ = ' ';
	p = put_digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_sec, 2);
	p = put_str(p, " GMT");
	*p = '\0';
	return out;
}

/* Reads exactly n decimal digits; returns -1 on anything else. */
static int read_digits(const char **p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	return v;
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

static int expect(const char **p, char c)
{
	if (**p != c)
		return -1;
	(*p)++;
	return 0;
}

static int parse_offset(const char **p, long *offset)
{
	int sign, hh, mm;

	if (**p == 'Z' || **p == 'z') {
		(*p)++;
		*offset = 0;
		return 0;
	}
	if (**p != '+' && **p != '-')
		return -1;
	sign = **p == '-' ? -1 : 1;
	(*p)++;
	if ((hh = read_digits(p, 2)) < 0 || expect(p, ':') < 0 ||
	    (mm = read_digits(p, 2)) < 0 || hh > 23 || mm > 59)
		return -1;
	*offset = sign * (hh * 3600L + mm * 60L);
	return 0;
}

static int parse_rfc3339(const char *s, time_t *out, int *ms_out)
{
	const char *p = s;
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
	long offset = 0;

	memset(&tm, 0, sizeof(tm));
	if ((y = read_digits(&p, 4)) < 0 || expect(&p, '-') < 0 ||
	    (mo = read_digits(&p, 2)) < 0 || expect(&p, '-') < 0 ||
	    (d = read_digits(&p, 2)) < 0)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -1;
	if (*p != '\0') {
		if (*p != 'T' && *p != 't')
			return -1;
		p++;
		if ((h = read_digits(&p, 2)) < 0 || expect(&p, ':') < 0 ||
		    (mi = read_digits(&p, 2)) < 0 || expect(&p, ':') < 0 ||
		    (sec = read_digits(&p, 2)) < 0)
			return -1;
		if (h > 23 || mi > 59 || sec > 60)
			return -1;
		if (*p == '.') {
			int digits = 0;
			p++;
			if (*p < '0' || *p > '9')
				return -1;
			for (; *p >= '0' && *p <= '9'; p++, digits++)
				if (digits < 3)
					ms = ms * 10 + (*p - '0');
			for (; digits < 3; digits++)
				ms *= 10;
		}
		if (parse_offset(&p, &offset) < 0 || *p != '\0')
			return -1;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec == 60 ? 59 : sec;
	*out = timegm(&tm) - offset;
	*ms_out = ms;
	return 0;
}

int timefmt_parse_rfc3339(const char *s, time_t *out)
{
	int ms;

	return parse_rfc3339(s, out, &ms);
}

int timefmt_parse_rfc3339_ms(const char *s, long long *out_ms)
{
	time_t t;
	int ms;

	if (parse_rfc3339(s, &t, &ms) < 0)
		return -1;
	*out_ms = (long long)t * 1000 + ms;
	return 0;
}

char *timefmt_rfc3339_ms_of(long long ms, char *out)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	ts.tv_nsec = (long)(ms - (long long)ts.tv_sec * 1000) * 1000000;
	return timefmt_rfc3339_ms(&ts, out);
}
