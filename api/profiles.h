/* Internal to api/: user profiles (the user without its password hash, and
 * its tenant) read through the profile cache, for /me and GET
 * /users/{id}. */
#ifndef FCGI_SSE_API_PROFILES_H
#define FCGI_SSE_API_PROFILES_H

#include "api.h"

/* Loads the tenant's user and the tenant. u->password_hash is left empty.
 * Returns STORE_OK, STORE_NOT_FOUND (either is gone) or STORE_ERROR. */
int profiles_load(struct api_env *env, const char *tenant_id, const char *user_id,
		  struct store_user *u, struct store_tenant *t);

/* After a role change or a deletion, before the answer: the next read
 * loads it again ("not found" entry for a deletion). */
void profiles_drop(struct api_env *env, const char *tenant_id, const char *user_id, int deleted);

#endif
