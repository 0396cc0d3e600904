// StreamClient: token → stream session → EventSource, kept alive.
//
// EventSource reconnects by itself after a network error or a stream that
// ended (readyState CONNECTING), sending Last-Event-ID; the client lets it.
// When EventSource gives up (readyState CLOSED: the server answered with a
// status other than 200) or stays silent past the heartbeat timeout, the
// client reconnects itself: with exponential backoff and full jitter, with
// the same stream session while the server still takes it or a new one, and
// always from the last id seen (`last_event_id`), so that nothing is lost
// and repeats are dropped.
//
// Every step that waits (a session request, a probe, a reconnect delay)
// belongs to one attempt, numbered by _gen; whatever abandons the attempt
// (stop, pause, a new attempt) bumps _gen, and a late answer of an older
// attempt is ignored.

import { backoffDelay } from './backoff.js';
import { createResumePoint } from './event-id.js';
import { createHeartbeat } from './heartbeat.js';
import { classifyStatus, probeStream, requestSession, streamUrl } from './http.js';
import { environment, settings } from './options.js';
import { canMove } from './state.js';

/** Events the server sends on every stream, whatever events= says. */
export const CONTROL_EVENTS = Object.freeze(['connected', 'ping', 'reset', 'shutdown', 'lifetime', 'revoked', 'close']);

const CONTROL = new Set(CONTROL_EVENTS);
const ES_CLOSED = 2; // EventSource.CLOSED
const SESSION_MARGIN_MS = 5000; // don't reuse a stream session this close to its end

function parseData(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class StreamClient {
  /**
   * Creates a client; nothing happens until start().
   * @param {import('../index.js').StreamClientOptions} options
   * @throws {TypeError} without getToken or EventSource, or for bad events/topics
   */
  constructor(options) {
    this._o = settings(options || {});
    this._env = environment(options || {});
    this._state = 'idle';
    this._listeners = new Map(); // event type -> Set of listeners
    this._stateListeners = new Set();
    this._resume = createResumePoint(this._o.lastEventId);
    this._session = null; // the stream session in use, reusable for reconnects
    this._source = null; // { es, url, session, onEvent } of the open EventSource
    this._timer = null; // the pending reconnect
    this._gen = 0; // the current attempt (see the top of this file)
    this._attempt = 0; // failures since the last healthy connection
    this._unopened = 0; // new stream sessions refused (401) before they opened, in a row
    this._watching = false;
    this._retryMs = this._o.retryMs; // the server's, once `connected` tells it
    this._planned = null; // 'lifetime': the server said the coming end is planned
    this._onVisibility = () => this._visibilityChanged();
    this._heartbeat = createHeartbeat({
      timeoutMs: 2 * this._o.heartbeatMs,
      now: this._env.now,
      setTimeout: this._env.setTimeout,
      clearTimeout: this._env.clearTimeout,
      onTimeout: () => this._retry('heartbeat'),
    });
  }

  /** @returns {string} idle, connecting, open, reconnecting, paused or stopped */
  get state() {
    return this._state;
  }

  /** @returns {string | null} the id a reconnect resumes from; keep it to resume later */
  get lastEventId() {
    return this._resume.id;
  }

  /** Connects (or, hidden with pauseWhenHidden, waits to be visible). No-op unless idle or stopped. */
  start() {
    if (this._state !== 'idle' && this._state !== 'stopped') return;
    this._attempt = 0;
    this._unopened = 0;
    this._watchVisibility(true);
    if (this._hidden()) this._pause();
    else this._connect();
  }

  /** Closes the stream for good (state stopped, reason "requested"); start() again resumes. */
  stop() {
    this._stop('requested');
  }

  /**
   * Adds a listener for one event type (a server event name such as
   * "device.updated", or a control event such as "ping").
   * @param {string} type
   * @param {(data: unknown, meta: { type: string, id: string | null, event: MessageEvent }) => void} listener
   *   data is the payload parsed as JSON (the raw text if it is not JSON)
   * @returns {() => void} removes the listener
   */
  on(type, listener) {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    if (type === 'open' || type === 'error') throw new TypeError(`"${type}" is not a server event; use onState()`);
    let set = this._listeners.get(type);
    if (!set) {
      this._listeners.set(type, (set = new Set()));
      if (this._source && !CONTROL.has(type)) this._source.es.addEventListener(type, this._source.onEvent);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /**
   * Adds a listener for state changes: { state, previous, ... } with
   * attempt (connecting, reconnecting), delayMs and cause (reconnecting),
   * reason, status and code (stopped).
   * @param {(change: object) => void} listener
   * @returns {() => void} removes the listener
   */
  onState(listener) {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    this._stateListeners.add(listener);
    return () => {
      this._stateListeners.delete(listener);
    };
  }

  // ------------------------------------------------------------ connecting

  async _connect() {
    this._halt();
    const gen = this._gen;
    this._setState('connecting', { attempt: this._attempt });
    if (gen !== this._gen) return; // a state listener stopped or paused us
    this._heartbeat.start(); // a session request that hangs counts as silence too
    const session = this._reusableSession() || (await this._newSession(gen));
    if (session && gen === this._gen) this._open(session);
  }

  _reusableSession() {
    const s = this._session;
    const now = this._env.now();
    if (!s || s.singleUse || !(now < s.reconnectUntil - SESSION_MARGIN_MS)) return null;
    return s.opened || now < s.connectBy - SESSION_MARGIN_MS ? s : null;
  }

  // One session request, and one more with a refreshed token when the
  // server says the token expired.
  async _newSession(gen) {
    for (let refresh = false; ; refresh = true) {
      let token;
      try {
        token = await this._o.getToken({ refresh });
      } catch (err) {
        if (gen === this._gen) {
          this._report(err);
          this._retry('token');
        }
        return null;
      }
      if (gen !== this._gen) return null;
      if (!token) {
        this._stop('unauthorized', { status: null, code: null });
        return null;
      }
      const r = await requestSession({
        fetch: this._env.fetch,
        baseUrl: this._o.baseUrl,
        token,
        credentials: this._credentials(),
        now: this._env.now,
      });
      if (gen !== this._gen) return null;
      if (r.status === 201) return (this._session = r.session);
      if (r.status === 401 && r.code === 'auth.token_expired' && !refresh) continue;
      this._sessionRefused(r);
      return null;
    }
  }

  _sessionRefused(r) {
    const kind = r.status === 204 ? 'rejected' : classifyStatus(r.status);
    if (kind === 'unauthorized') this._stop('unauthorized', { status: 401, code: r.code });
    else if (kind === 'retry') this._retry('session', r.retryAfterMs);
    else this._stop('rejected', { status: r.status, code: r.code });
  }

  _open(session) {
    const url = streamUrl(this._o.baseUrl, {
      sessionId: session.id,
      events: this._o.events,
      topics: this._o.topics,
      lastEventId: this._resume.id,
    });
    let es;
    try {
      es = new this._env.EventSource(url, { withCredentials: this._o.withCredentials });
    } catch (err) {
      this._report(err); // a URL the browser refuses: a wrong baseUrl
      this._stop('rejected', { status: null, code: null });
      return;
    }
    const source = { es, url, session, onEvent: (ev) => this._source === source && this._received(source, ev) };
    this._source = source;
    es.addEventListener('open', () => this._source === source && this._opened(source));
    es.addEventListener('error', () => this._source === source && this._failed(source));
    for (const type of new Set([...CONTROL, ...this._listeners.keys()])) es.addEventListener(type, source.onEvent);
  }

  // ------------------------------------------------------------ the stream

  _opened(source) {
    this._planned = null;
    source.session.opened = true;
    this._unopened = 0;
    this._heartbeat.beat();
    this._setState('open');
  }

  _received(source, ev) {
    const type = ev.type;
    const id = ev.lastEventId || null;
    const meta = { type, id, event: ev };

    this._heartbeat.beat();
    this._attempt = 0; // the server's frames reach us: a healthy connection
    if (type === 'reset') this._resume.reset(id);
    else if (CONTROL.has(type)) this._resume.advance(id);
    else if (!this._resume.accept(id)) return; // a repeat, replayed after a resume
    if (type === 'reset' && this._o.onReset) this._call(this._o.onReset, meta);
    const data = parseData(ev.data);
    if (type === 'connected') this._told(data);
    else if (type === 'lifetime') this._planned = 'lifetime';
    for (const fn of [...(this._listeners.get(type) || [])]) this._call(fn, data, meta);
    if (this._source !== source) return; // a listener stopped or paused us
    if (type === 'revoked') this._stop('revoked');
    else if (type === 'close') this._stop('closed');
    else if (type === 'shutdown') this._schedule('shutdown', Math.floor(this._env.random() * this._retryMs));
  }

  // `connected` tells what EventSource keeps to itself: the stream's retry
  // and the server's heartbeat interval (servers before 0.1.0 did not)
  _told(data) {
    if (!data || typeof data !== 'object') return;
    if (Number.isInteger(data.retry_ms) && data.retry_ms > 0) this._retryMs = data.retry_ms;
    if (this._o.heartbeatMs > 0 && Number.isInteger(data.heartbeat_ms) && data.heartbeat_ms > 0) {
      this._heartbeat.setTimeoutMs(2 * data.heartbeat_ms);
    }
  }

  _failed(source) {
    if (source.es.readyState === ES_CLOSED) {
      this._refused(source);
      return;
    }
    // EventSource retries by itself; the heartbeat monitor bounds how long
    if (this._state === 'open' || this._state === 'connecting') {
      const cause = this._planned || 'network'; // after `lifetime`, a planned end
      this._planned = null;
      this._setState('reconnecting', { cause, attempt: this._attempt, delayMs: null });
    }
  }

  // EventSource gave up: the server answered the stream request with
  // another status than 200, which EventSource does not show. Ask again
  // with HEAD to learn it.
  async _refused(source) {
    this._halt();
    const gen = this._gen;
    this._setState('reconnecting', { cause: 'refused', attempt: this._attempt, delayMs: null });
    if (gen !== this._gen) return;
    this._heartbeat.start(); // bounds the probe
    const p = await probeStream({
      fetch: this._env.fetch,
      url: source.url,
      lastEventId: this._resume.id,
      credentials: this._credentials(),
      now: this._env.now,
    });
    if (gen !== this._gen) return;
    const kind = classifyStatus(p.status);
    if (kind === 'finished') return this._stop('no_content', { status: 204, code: null });
    if (kind === 'rejected') return this._stop('rejected', { status: p.status, code: null });
    if (kind === 'unauthorized') {
      // expired, single use, login gone or cookie missing: a new session
      // may do; two new ones refused before they ever opened will not
      this._session = null;
      if (!source.session.opened && ++this._unopened >= 2) {
        return this._stop('invalid_session', { status: 401, code: 'events.invalid_session' });
      }
    }
    this._retry('refused', p.retryAfterMs);
  }

  // ------------------------------------------------------------ retrying, stopping

  _retry(cause, minDelayMs = 0) {
    const attempt = ++this._attempt;
    if (attempt > this._o.maxAttempts) {
      this._stop('gave_up', { cause });
      return;
    }
    this._schedule(cause, Math.max(backoffDelay(attempt, this._o.backoff, this._env.random), minDelayMs));
  }

  _schedule(cause, delayMs) {
    this._halt();
    // armed before the state change, so that a listener's stop() clears it
    this._timer = this._env.setTimeout(() => {
      this._timer = null;
      this._connect();
    }, delayMs);
    this._setState('reconnecting', { cause, attempt: this._attempt, delayMs });
  }

  _stop(reason, detail = {}) {
    if (this._state === 'stopped') return;
    this._halt();
    this._watchVisibility(false);
    this._setState('stopped', { reason, ...detail });
  }

  _pause() {
    this._halt();
    this._setState('paused');
  }

  // Abandons the current attempt: closes the EventSource, cancels the
  // pending reconnect and the heartbeat monitor.
  _halt() {
    this._gen++;
    if (this._source) this._source.es.close();
    this._source = null;
    if (this._timer !== null) this._env.clearTimeout(this._timer);
    this._timer = null;
    this._heartbeat.stop();
  }

  // ------------------------------------------------------------ visibility

  _hidden() {
    const doc = this._env.document;
    return this._o.pauseWhenHidden && doc != null && doc.visibilityState === 'hidden';
  }

  _watchVisibility(on) {
    const doc = this._env.document;
    if (!this._o.pauseWhenHidden || doc == null || on === this._watching) return;
    if (on) doc.addEventListener('visibilitychange', this._onVisibility);
    else doc.removeEventListener('visibilitychange', this._onVisibility);
    this._watching = on;
  }

  _visibilityChanged() {
    if (this._hidden()) {
      if (this._state !== 'paused' && this._state !== 'stopped') this._pause();
    } else if (this._state === 'paused') {
      this._attempt = 0;
      this._connect();
    }
  }

  // ------------------------------------------------------------ helpers

  _credentials() {
    return this._o.withCredentials ? 'include' : 'same-origin';
  }

  _setState(state, info = {}) {
    const previous = this._state;
    if (!canMove(previous, state)) throw new Error(`@fcgi-sse/client: no move from ${previous} to ${state}`);
    this._state = state;
    const change = { state, previous, ...info };
    for (const fn of [...this._stateListeners]) this._call(fn, change);
  }

  // Calls an application callback; what it throws (or rejects with) goes
  // to onError and never into the client's bookkeeping.
  _call(fn, ...args) {
    try {
      const r = fn(...args);
      if (r && typeof r.then === 'function') r.then(undefined, (err) => this._report(err));
    } catch (err) {
      this._report(err);
    }
  }

  _report(err) {
    try {
      this._o.onError(err);
    } catch {
      // an onError that throws has nowhere left to report to
    }
  }
}

/**
 * Creates a StreamClient (same as `new StreamClient(options)`).
 * @param {import('../index.js').StreamClientOptions} options
 * @returns {StreamClient}
 */
export function createClient(options) {
  return new StreamClient(options);
}
