// StreamClient's options: checked, with their defaults, and the browser
// environment it runs in (replaceable for tests).

const NAME = /^[A-Za-z0-9_.:-]+$/;

function nameList(value, what, max) {
  const list = value == null ? [] : Array.isArray(value) ? [...value] : String(value).split(',');
  if (list.length > 16 || list.some((s) => typeof s !== 'string' || s.length > max || !NAME.test(s))) {
    throw new TypeError(`options.${what}: up to 16 names of [A-Za-z0-9_.:-]{1,${max}}`);
  }
  return list;
}

/**
 * The client's settings from its options, with defaults (README "Options").
 * @param {object} o  the options given to StreamClient
 * @throws {TypeError} without getToken, or for bad events or topics
 */
export function settings(o) {
  if (o.getToken == null) throw new TypeError('options.getToken is required');
  const token = o.getToken;
  return {
    baseUrl: String(o.baseUrl ?? '/api/v2').replace(/\/+$/, ''),
    getToken: typeof token === 'function' ? token : () => token,
    events: nameList(o.events, 'events', 64),
    topics: nameList(o.topics, 'topics', 128),
    lastEventId: o.lastEventId ?? null,
    heartbeatMs: o.heartbeatMs ?? 15000,
    retryMs: o.retryMs ?? 3000,
    backoff: { baseMs: o.backoff?.baseMs ?? 1000, capMs: o.backoff?.capMs ?? 30000 },
    maxAttempts: o.maxAttempts ?? Infinity,
    pauseWhenHidden: Boolean(o.pauseWhenHidden),
    withCredentials: Boolean(o.withCredentials),
    onReset: o.onReset ?? null,
    onError: o.onError ?? ((err) => console.error('@fcgi-sse/client:', err)),
  };
}

/**
 * The browser functions the client uses, or the replacements the options
 * give (tests). The defaults are wrapped so that none is called with a
 * foreign `this` (a browser throws "Illegal invocation" then) and so that
 * a polyfill installed later is still found.
 * @param {object} o  the options given to StreamClient
 * @throws {TypeError} when there is no EventSource
 */
export function environment(o) {
  const g = globalThis;
  const env = {
    EventSource: o.EventSource ?? g.EventSource,
    fetch: o.fetch ?? ((url, init) => g.fetch(url, init)),
    setTimeout: o.setTimeout ?? ((fn, ms) => g.setTimeout(fn, ms)),
    clearTimeout: o.clearTimeout ?? ((handle) => g.clearTimeout(handle)),
    now: o.now ?? (() => Date.now()),
    random: o.random ?? (() => Math.random()),
    document: o.document !== undefined ? o.document : g.document,
  };
  if (typeof env.EventSource !== 'function') {
    throw new TypeError('no EventSource here: pass options.EventSource');
  }
  return env;
}
