// Fakes of the browser environment that the client is given in the tests:
// a clock with timers, an EventSource the test drives, a scripted fetch and
// a document with a visibility state. Nothing here touches real timers or
// the network, so every test is deterministic. (Node's own mock.timers is
// not used: Node 18 lacks it.)

/** A manual clock: timers run only when the test advances time. */
export class FakeClock {
  constructor(start = 1_800_000_000_000) {
    this.time = start;
    this._timers = new Map(); // handle -> { at, fn, seq }
    this._next = 1;
    this.setTimeout = (fn, ms) => {
      const handle = this._next++;
      this._timers.set(handle, { at: this.time + Math.max(0, ms || 0), fn, seq: handle });
      return handle;
    };
    this.clearTimeout = (handle) => {
      this._timers.delete(handle);
    };
    this.now = () => this.time;
  }

  /** @returns {number} timers waiting */
  get pending() {
    return this._timers.size;
  }

  /** @returns {number | null} ms until the next timer, if any */
  nextIn() {
    let first = null;
    for (const t of this._timers.values()) if (first === null || t.at < first) first = t.at;
    return first === null ? null : first - this.time;
  }

  /** Moves time forward by ms, running each timer due, in order, at its own time. */
  advance(ms) {
    const end = this.time + ms;
    for (;;) {
      let due = null;
      for (const [handle, t] of this._timers) {
        if (t.at <= end && (due === null || t.at < due[1].at || (t.at === due[1].at && t.seq < due[1].seq))) {
          due = [handle, t];
        }
      }
      if (due === null) break;
      this._timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].fn();
    }
    this.time = end;
  }

  /** Moves time forward without running timers: a frozen tab or a sleeping machine. */
  jump(ms) {
    this.time += ms;
  }
}

/** Lets every pending promise callback run (no timers involved). */
export function flush() {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A Math.random stand-in returning the given values in turn (the last one repeats). */
export function sequence(...values) {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)];
}

/** An EventSource the test drives; every instance is kept in FakeEventSource.all. */
export class FakeEventSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  static all = [];

  static reset() {
    FakeEventSource.all = [];
  }

  /** @returns {FakeEventSource} the newest instance */
  static get last() {
    return FakeEventSource.all[FakeEventSource.all.length - 1];
  }

  constructor(url, init = {}) {
    this.url = url;
    this.withCredentials = Boolean(init.withCredentials);
    this.readyState = FakeEventSource.CONNECTING;
    this.closed = false;
    this._lastId = '';
    this._listeners = new Map();
    FakeEventSource.all.push(this);
  }

  addEventListener(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
  }

  removeEventListener(type, fn) {
    this._listeners.get(type)?.delete(fn);
  }

  close() {
    this.readyState = FakeEventSource.CLOSED;
    this.closed = true;
  }

  /** @returns {URLSearchParams} the query of the URL it was opened with */
  get query() {
    return new URLSearchParams(this.url.slice(this.url.indexOf('?') + 1));
  }

  _dispatch(type, ev) {
    if (this.closed && type !== 'error') return; // a closed EventSource fires nothing
    for (const fn of [...(this._listeners.get(type) || [])]) fn(ev);
  }

  /** The server answered 200 text/event-stream. */
  open() {
    this.readyState = FakeEventSource.OPEN;
    this._dispatch('open', { type: 'open', target: this });
  }

  /**
   * One event. Like EventSource, an event without id keeps the last id.
   * @param {string} type
   * @param {unknown} data  sent as JSON (a string is sent as is)
   * @param {string} [id]
   */
  emit(type, data = {}, id) {
    if (id !== undefined) this._lastId = id;
    const text = typeof data === 'string' ? data : JSON.stringify(data);
    this._dispatch(type, { type, data: text, lastEventId: this._lastId, target: this });
  }

  /** A network error or an ended stream: EventSource will retry by itself. */
  drop() {
    this.readyState = FakeEventSource.CONNECTING;
    this._dispatch('error', { type: 'error', target: this });
  }

  /** A status other than 200: EventSource gives up. */
  refuse() {
    this.readyState = FakeEventSource.CLOSED;
    this._dispatch('error', { type: 'error', target: this });
    this.closed = true;
  }
}

/** A minimal fetch Response. */
export function response(status, body, headers = {}) {
  const h = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: { get: (name) => h.get(name.toLowerCase()) ?? null },
    json: async () => {
      if (body === undefined) throw new SyntaxError('no body');
      return body;
    },
  };
}

/** A stream session answer as POST /events/session gives it. */
export function sessionBody(clock, id = 'sess1', { singleUse = false, ageS = 43200 } = {}) {
  return {
    session_id: id,
    expires_at: new Date(clock.now() + 30_000).toISOString(),
    reconnect_until: new Date(clock.now() + ageS * 1000).toISOString(),
    single_use: singleUse,
  };
}

/**
 * A fetch whose answers the test gives, in order, per "METHOD path": a
 * response, a function (url, init) => response, or an Error to reject with.
 * With none queued it never answers (a hung request). Calls are recorded.
 */
export class FakeFetch {
  constructor() {
    this.calls = [];
    this._queues = new Map();
    this.fetch = (url, init = {}) => {
      const method = init.method || 'GET';
      const key = `${method} ${url.split('?')[0]}`;
      this.calls.push({ key, url, init });
      const next = (this._queues.get(key) || []).shift();
      if (next === undefined) return new Promise(() => {});
      if (next instanceof Error) return Promise.reject(next);
      return Promise.resolve(typeof next === 'function' ? next(url, init) : next);
    };
  }

  /** Queues answers for "METHOD path". */
  on(key, ...answers) {
    if (!this._queues.has(key)) this._queues.set(key, []);
    this._queues.get(key).push(...answers);
    return this;
  }

  /** @returns {object[]} the calls made to "METHOD path" */
  callsTo(key) {
    return this.calls.filter((c) => c.key === key);
  }
}

/** A document whose visibility the test sets. */
export class FakeDocument {
  constructor(visibilityState = 'visible') {
    this.visibilityState = visibilityState;
    this._listeners = new Set();
  }

  addEventListener(type, fn) {
    if (type === 'visibilitychange') this._listeners.add(fn);
  }

  removeEventListener(type, fn) {
    if (type === 'visibilitychange') this._listeners.delete(fn);
  }

  get listening() {
    return this._listeners.size;
  }

  set(state) {
    this.visibilityState = state;
    for (const fn of [...this._listeners]) fn({ type: 'visibilitychange' });
  }
}
