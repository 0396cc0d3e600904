/* admin: the operator's command line, `fcgi_sse admin ...` (API.md §8).
 *
 *   create-tenant NAME
 *   create-user --tenant NAME --username NAME --role ROLE   (password on stdin)
 *   list-users --tenant NAME
 *
 * Results are JSON lines on out; problems one line on err. */
#ifndef FCGI_SSE_ADMIN_H
#define FCGI_SSE_ADMIN_H

#include <stdio.h>

#include "../store/store.h"

/* Exit statuses (sysexits.h meanings). */
#define ADMIN_OK 0
#define ADMIN_USAGE 64   /* bad command line */
#define ADMIN_DATAERR 65 /* unknown tenant, invalid name, role or password */
#define ADMIN_EXISTS 73  /* the tenant or user already exists */
#define ADMIN_STORE 74   /* the store failed */

/* Runs one admin command. argv[0] is the command name (--config already
 * removed by the caller). iterations is the PBKDF2 count for new
 * passwords. Returns an ADMIN_* status. */
int admin_run(int argc, char **argv, struct store *st, long iterations, FILE *in, FILE *out,
	      FILE *err);

/* The usage text. */
void admin_usage(FILE *to);

#endif
