/* fcgi_record: FastCGI records written without libfcgi, for streams the
 * hub owns (FastCGI 1.0 spec §3.3: 8-byte header {version, type,
 * requestId, contentLength, paddingLength, reserved}, content, padding to
 * a multiple of 8). Pure. */
#ifndef FCGI_SSE_FCGI_RECORD_H
#define FCGI_SSE_FCGI_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define FCGI_RECORD_HEADER 8
#define FCGI_RECORD_MAX_CONTENT 65535
#define FCGI_TYPE_END_REQUEST 3
#define FCGI_TYPE_STDOUT 6

/* Writes the header of one record into hdr (8 bytes) and returns the
 * padding length that must follow content_len bytes of content.
 * content_len must be <= FCGI_RECORD_MAX_CONTENT. */
size_t fcgi_record_header(unsigned char *hdr, int type, int request_id, size_t content_len);

/* Appends p[0..n) as FCGI_STDOUT records (split at 65535 bytes, padded).
 * n == 0 appends nothing (an empty STDOUT record ends the stream: see
 * fcgi_record_end). Returns 0, or -1 when memory ran out. */
int fcgi_record_stdout(struct buf *out, int request_id, const char *p, size_t n);

/* Appends the end of a response: an empty FCGI_STDOUT record and an
 * FCGI_END_REQUEST record with app_status and protocol status
 * FCGI_REQUEST_COMPLETE. Returns 0 or -1. */
int fcgi_record_end(struct buf *out, int request_id, uint32_t app_status);

#endif
