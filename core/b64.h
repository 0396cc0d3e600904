/* b64: base64url (RFC 4648 §5) without padding, as JWT uses it. Pure. */
#ifndef FCGI_SSE_B64_H
#define FCGI_SSE_B64_H

#include <stddef.h>

/* Returns the length of the unpadded encoding of n bytes (no NUL). */
size_t b64url_encoded_len(size_t n);

/* Writes the unpadded base64url encoding of in[0..n) and a NUL to out, which
 * holds b64url_encoded_len(n) + 1 bytes. */
void b64url_encode(const unsigned char *in, size_t n, char *out);

/* Returns the largest number of bytes decoding n characters can yield. */
size_t b64url_decoded_max(size_t n);

/* Decodes in[0..n) strictly: only A-Z a-z 0-9 - _, no padding, no
 * whitespace, length not 1 mod 4, and unused trailing bits zero (one
 * canonical encoding per value). Writes at most b64url_decoded_max(n)
 * bytes to out and their number to *outlen. Returns 0, or -1 when in is
 * not such an encoding. */
int b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outlen);

#endif
