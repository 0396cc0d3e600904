#include "cookie.h"

#include <string.h>

int cookie_find(const char *header, const char *name, const char **val, size_t *len)
{
	size_t nlen = strlen(name);
	const char *p = header;

	if (p == NULL || nlen == 0)
		return 0;
	while (*p != '\0') {
		const char *end;
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			const char *v = p + nlen + 1, *e = end;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if (e - v >= 2 && *v == '"' && e[-1] == '"') {
				v++;
				e--;
			}
			*val = v;
			*len = (size_t)(e - v);
			return 1;
		}
		p = end;
	}
	return 0;
}
