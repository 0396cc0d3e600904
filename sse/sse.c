#include "sse.h"

#include <string.h>

int sse_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 64 && strpbrk(s, "\r\n") == NULL;
}

static int id_ok(const char *s)
{
	return strlen(s) <= 256 && strpbrk(s, "\r\n") == NULL;
}

int sse_retry(struct buf *out, long long ms)
{
	return buf_printf(out, "retry: %lld\n\n", ms);
}

/* Appends data as "data: line\n" lines, splitting at LF, CR and CRLF. */
static void put_data(struct buf *out, const char *data, size_t len)
{
	size_t start = 0, i = 0;

	for (;;) {
		if (i == len || data[i] == '\n' || data[i] == '\r') {
			buf_puts(out, "data: ");
			buf_append(out, data + start, i - start);
			buf_puts(out, "\n");
			if (i == len)
				break;
			if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
				i++;
			start = ++i;
			continue;
		}
		i++;
	}
}

int sse_event(struct buf *out, const char *id, const char *event,
	      const char *data, size_t len)
{
	size_t mark = out->len;

	if ((id != NULL && !id_ok(id)) || !sse_name_ok(event))
		return -1;
	if (memchr(data, '\0', len) != NULL)
		return -1;
	if (id != NULL)
		buf_printf(out, "id: %s\n", id);
	buf_printf(out, "event: %s\n", event);
	put_data(out, data, len);
	buf_puts(out, "\n");
	if (out->oom) {
		out->len = mark;
		if (out->data != NULL)
			out->data[mark] = '\0';
		return -1;
	}
	return 0;
}

int sse_comment(struct buf *out, const char *text)
{
	if (strpbrk(text, "\r\n") != NULL)
		return -1;
	buf_printf(out, ": %s\n\n", text);
	return out->oom ? -1 : 0;
}
