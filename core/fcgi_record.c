#include "fcgi_record.h"

static const unsigned char zeros[8];

size_t fcgi_record_header(unsigned char *hdr, int type, int request_id, size_t content_len)
{
	size_t pad = (8 - content_len % 8) % 8;

	hdr[0] = 1; /* FCGI_VERSION_1 */
	hdr[1] = (unsigned char)type;
	hdr[2] = (unsigned char)((request_id >> 8) & 0xff);
	hdr[3] = (unsigned char)(request_id & 0xff);
	hdr[4] = (unsigned char)((content_len >> 8) & 0xff);
	hdr[5] = (unsigned char)(content_len & 0xff);
	hdr[6] = (unsigned char)pad;
	hdr[7] = 0;
	return pad;
}

int fcgi_record_stdout(struct buf *out, int request_id, const char *p, size_t n)
{
	while (n > 0) {
		size_t chunk = n > FCGI_RECORD_MAX_CONTENT ? FCGI_RECORD_MAX_CONTENT : n;
		unsigned char hdr[FCGI_RECORD_HEADER];
		size_t pad = fcgi_record_header(hdr, FCGI_TYPE_STDOUT, request_id, chunk);

		buf_append(out, hdr, sizeof(hdr));
		buf_append(out, p, chunk);
		buf_append(out, zeros, pad);
		p += chunk;
		n -= chunk;
	}
	return out->oom ? -1 : 0;
}

int fcgi_record_end(struct buf *out, int request_id, uint32_t app_status)
{
	unsigned char hdr[FCGI_RECORD_HEADER], body[8] = { 0 };

	fcgi_record_header(hdr, FCGI_TYPE_STDOUT, request_id, 0);
	buf_append(out, hdr, sizeof(hdr));
	fcgi_record_header(hdr, FCGI_TYPE_END_REQUEST, request_id, sizeof(body));
	body[0] = (unsigned char)(app_status >> 24);
	body[1] = (unsigned char)(app_status >> 16);
	body[2] = (unsigned char)(app_status >> 8);
	body[3] = (unsigned char)app_status;
	body[4] = 0; /* FCGI_REQUEST_COMPLETE */
	buf_append(out, hdr, sizeof(hdr));
	buf_append(out, body, sizeof(body));
	return out->oom ? -1 : 0;
}
