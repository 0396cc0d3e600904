/* timefmt: the date formats of the HTTP contract. Pure; leaf module. */
#ifndef FCGI_SSE_TIMEFMT_H
#define FCGI_SSE_TIMEFMT_H

#include <time.h>

#define TIMEFMT_RFC3339_LEN 20    /* 2026-11-21T23:59:00Z */
#define TIMEFMT_RFC3339_MS_LEN 24 /* 2026-11-21T23:59:00.123Z */
#define TIMEFMT_IMF_LEN 29        /* Sat, 21 Nov 2026 23:59:00 GMT */

/* gmtime_r's answer for t (every field but tm_isdst, tm_gmtoff, tm_zone
 * zero), without its lock. */
void timefmt_utc(time_t t, struct tm *tm);

/* Writes t as an RFC 3339 UTC timestamp with second precision into out
 * (TIMEFMT_RFC3339_LEN + 1 bytes). Returns out. */
char *timefmt_rfc3339(time_t t, char *out);

/* Same with milliseconds, for log lines (TIMEFMT_RFC3339_MS_LEN + 1 bytes). */
char *timefmt_rfc3339_ms(const struct timespec *ts, char *out);

/* Writes t as an IMF-fixdate (RFC 9110 §5.6.7, as used by `Sunset`) into out
 * (TIMEFMT_IMF_LEN + 1 bytes). Returns out. */
char *timefmt_imf_fixdate(time_t t, char *out);

/* Parses an RFC 3339 date-time ("2027-06-30T00:00:00Z", an optional
 * fraction, "Z" or a "+hh:mm"/"-hh:mm" offset) or a full date
 * ("2027-06-30", meaning midnight UTC). Returns 0 and sets *out, or -1 when
 * s is not exactly one of these forms or names an impossible date. */
int timefmt_parse_rfc3339(const char *s, time_t *out);

/* The same, in Unix milliseconds (the fraction's first three digits). */
int timefmt_parse_rfc3339_ms(const char *s, long long *out_ms);

/* Writes Unix milliseconds ms as timefmt_rfc3339_ms does. Returns out. */
char *timefmt_rfc3339_ms_of(long long ms, char *out);

#endif
