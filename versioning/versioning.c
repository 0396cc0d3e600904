#include "versioning.h"

#include <stdio.h>
#include <string.h>

#include "../core/timefmt.h"

static int known(int v)
{
	return v >= API_VERSION_OLDEST && v <= API_VERSION_CURRENT;
}

/* "v" followed by digits, no leading zero: returns the number, or -2 for a
 * version-like segment we do not serve, or -1 when it is not version-like. */
static int parse_version_segment(const char *s, size_t n)
{
	int v = 0;

	if (n < 2 || s[0] != 'v')
		return -1;
	for (size_t i = 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v < 1000)
			v = v * 10 + (s[i] - '0');
	}
	if (s[1] == '0' || !known(v))
		return -2;
	return v;
}

static int parse_header_version(const char *h)
{
	if (strcmp(h, "1") == 0)
		return 1;
	if (strcmp(h, "2") == 0)
		return 2;
	return -1;
}

enum version_result versioning_resolve(const char *path, const char *header,
				       struct version_resolution *out)
{
	const char *seg;
	size_t n;
	int v;

	memset(out, 0, sizeof(*out));
	if (strncmp(path, "/api", 4) != 0 || (path[4] != '\0' && path[4] != '/'))
		return VERSION_NOT_API;
	seg = path[4] == '/' ? path + 5 : path + 4;
	n = strcspn(seg, "/");
	v = parse_version_segment(seg, n);
	if (v == -2)
		return VERSION_UNKNOWN;
	if (v > 0) {
		out->version = v;
		out->from_path = 1;
		out->rest = seg[n] != '\0' ? seg + n : "/";
		return VERSION_OK;
	}
	if (header != NULL) {
		if ((v = parse_header_version(header)) < 0)
			return VERSION_UNKNOWN;
	} else {
		v = API_VERSION_CURRENT;
	}
	out->version = v;
	out->rest = path[4] != '\0' ? path + 4 : "/";
	return VERSION_OK;
}

int versioning_apply(const struct version_policy *p, int version, time_t now,
		     struct http_response *resp)
{
	char num[32], date[TIMEFMT_IMF_LEN + 1];
	struct buf link = BUF_INIT;
	int rc = 0;

	snprintf(num, sizeof(num), "%d", version);
	rc |= http_response_header(resp, "API-Version", num);
	if (version != 1)
		return rc < 0 ? -1 : 0;
	snprintf(num, sizeof(num), "@%lld", (long long)p->v1_deprecation);
	rc |= http_response_header(resp, "Deprecation", num);
	rc |= http_response_header(resp, "Sunset", timefmt_imf_fixdate(p->v1_sunset, date));
	buf_printf(&link, "<%s>; rel=\"successor-version\", <%s>; rel=\"deprecation\"",
		   p->v1_successor_url, p->v1_deprecation_url);
	rc |= link.oom ? -1 : http_response_header(resp, "Link", buf_str(&link));
	buf_release(&link);
	if (rc < 0)
		return -1;
	return now >= p->v1_sunset ? 1 : 0;
}
