// The dashboard's REST side (docs/API.md §4, §4a): login, token refresh,
// logout and JSON requests with the bearer token. The fingerprint cookie
// (__Host-fgp, HttpOnly) is the browser's business: fetch sends it on
// same-origin requests by itself. The token lives in this module's memory
// only, never in storage or a URL.

/** A problem answer (RFC 9457) or a failed request; `code` is the problem's. */
export class ApiError extends Error {
  constructor(status, problem, fallback) {
    super((problem && (problem.detail || problem.title)) || fallback || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = (problem && problem.code) || null;
  }
}

async function problemOf(res) {
  try {
    return await res.json();
  } catch {
    return null;
  }
}

/**
 * @param {object} o
 * @param {string} [o.baseUrl]  the API's root, default "/api/v2"
 * @param {(err: ApiError) => void} [o.onSessionEnded]  a request was refused
 *   because the login is over (revoked, logged out, expired)
 */
export function createApi({ baseUrl = '/api/v2', onSessionEnded = () => {} } = {}) {
  let token = null;
  let user = null;

  async function send(method, path, body, auth = true) {
    const headers = { Accept: 'application/json' };
    if (auth) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(baseUrl + path, {
        method,
        headers,
        // a POST without a body still goes with Content-Length: 0 (the
        // Fetch standard says so), which lighttpd needs (docs/API.md §2)
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (err) {
      throw new ApiError(0, null, `no answer from the server (${err.message})`);
    }
    if (res.status === 204) return null;
    if (res.ok) return res.json();
    throw new ApiError(res.status, await problemOf(res));
  }

  async function refresh() {
    const body = await send('POST', '/auth/refresh');
    token = body.access_token;
    return token;
  }

  // A request with the token; one refresh and one more try when the token
  // has expired. Any other 401 means the login is over.
  async function request(method, path, body) {
    if (!token) throw new ApiError(401, { code: 'auth.missing_token', detail: 'not logged in' });
    try {
      return await send(method, path, body);
    } catch (err) {
      if (err.status !== 401) throw err;
      if (err.code === 'auth.token_expired') {
        try {
          await refresh();
        } catch (again) {
          if (again.status === 401) onSessionEnded(again);
          throw again;
        }
        return send(method, path, body);
      }
      onSessionEnded(err);
      throw err;
    }
  }

  return {
    /** @returns {string | null} the current access token */
    get token() {
      return token;
    },
    /** @returns {object | null} the logged-in user (login's `user`) */
    get user() {
      return user;
    },
    /** Logs in; the answer sets the fingerprint cookie. @returns the user */
    async login(tenant, username, password) {
      const body = await send('POST', '/auth/login', { tenant, username, password }, false);
      token = body.access_token;
      user = body.user;
      return user;
    },
    refresh,
    /** Ends the login on the server (its streams get `revoked`); forgets the token. */
    async logout() {
      try {
        if (token) await send('POST', '/auth/logout');
      } finally {
        token = null;
        user = null;
      }
    },
    /** Forgets the token without telling the server (it is dead already). */
    forget() {
      token = null;
      user = null;
    },
    get: (path) => request('GET', path),
    post: (path, body) => request('POST', path, body),
  };
}
