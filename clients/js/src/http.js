// The client's HTTP requests to fcgi_sse (docs/API.md §6): creating a
// stream session, the stream's URL, and asking the stream URL with HEAD why
// EventSource gave up (EventSource never shows the status). Each function
// returns what the server said; what to do about it is the client's choice.

import { parseRetryAfter } from './backoff.js';

/**
 * What a status of the stream route (or of the session request) calls for.
 * @param {number} status  0 when no answer came
 * @returns {'finished' | 'unauthorized' | 'retry' | 'rejected'}
 *   finished: 204, the publisher ended the stream; unauthorized: 401;
 *   retry: no answer, 200 (it works again), 408, 425, 429 and 5xx;
 *   rejected: anything else (400, 403, 404, 410...), which a retry repeats.
 */
export function classifyStatus(status) {
  if (status === 204) return 'finished';
  if (status === 401) return 'unauthorized';
  if ([0, 200, 408, 425, 429].includes(status) || status >= 500) return 'retry';
  return 'rejected';
}

async function problemCode(res) {
  try {
    const body = await res.json();
    return body && typeof body.code === 'string' ? body.code : null;
  } catch {
    return null;
  }
}

function toSession(body) {
  if (!body || typeof body.session_id !== 'string' || body.session_id === '') {
    throw new TypeError('stream session answer without a session_id');
  }
  return {
    id: body.session_id,
    connectBy: Date.parse(body.expires_at), // NaN when absent: never reused unopened
    reconnectUntil: Date.parse(body.reconnect_until),
    singleUse: body.single_use !== false,
    opened: false,
  };
}

/**
 * POST {baseUrl}/events/session with the bearer token; the browser adds
 * the fingerprint cookie (credentials).
 * @param {object} o
 * @param {typeof fetch} o.fetch
 * @param {string} o.baseUrl  e.g. "/api/v2"
 * @param {string} o.token
 * @param {RequestCredentials} o.credentials
 * @param {() => number} o.now
 * @returns {Promise<{ status: number, session?: object, code?: string | null,
 *   retryAfterMs?: number, error?: unknown }>}  status 201 with the session,
 *   another status with the problem's code and Retry-After, or 0 with the
 *   error when no usable answer came. Never rejects.
 */
export async function requestSession(o) {
  try {
    const res = await o.fetch(`${o.baseUrl}/events/session`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${o.token}`, Accept: 'application/json' },
      credentials: o.credentials,
    });
    if (res.status === 201) return { status: 201, session: toSession(await res.json()) };
    return {
      status: res.status,
      code: await problemCode(res),
      retryAfterMs: parseRetryAfter(res.headers.get('Retry-After'), o.now()),
    };
  } catch (error) {
    return { status: 0, error };
  }
}

/**
 * HEAD of the stream URL, to learn the status EventSource saw: the server
 * checks a HEAD like the GET (session, cookie, login, finished) without
 * opening a stream. Last-Event-ID lets it tell a session finished by a
 * `close` that history holds.
 * @param {object} o
 * @param {typeof fetch} o.fetch
 * @param {string} o.url  the stream URL EventSource used
 * @param {string | null} o.lastEventId
 * @param {RequestCredentials} o.credentials
 * @param {() => number} o.now
 * @returns {Promise<{ status: number, retryAfterMs: number }>}  status 0 when
 *   no answer came. Never rejects.
 */
export async function probeStream(o) {
  try {
    const res = await o.fetch(o.url, {
      method: 'HEAD',
      headers: o.lastEventId ? { 'Last-Event-ID': o.lastEventId } : {},
      credentials: o.credentials,
    });
    return { status: res.status, retryAfterMs: parseRetryAfter(res.headers.get('Retry-After'), o.now()) };
  } catch {
    return { status: 0, retryAfterMs: 0 };
  }
}

/**
 * The EventSource URL: {baseUrl}/events/stream?session_id=...[&events=...]
 * [&topics=...][&last_event_id=...].
 * @param {string} baseUrl
 * @param {{ sessionId: string, events: string[], topics: string[], lastEventId: string | null }} p
 * @returns {string}
 */
export function streamUrl(baseUrl, p) {
  const q = [['session_id', p.sessionId]];
  if (p.events.length) q.push(['events', p.events.join(',')]);
  if (p.topics.length) q.push(['topics', p.topics.join(',')]);
  if (p.lastEventId) q.push(['last_event_id', p.lastEventId]);
  return `${baseUrl}/events/stream?${q.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`;
}
