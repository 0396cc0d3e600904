// Type declarations for @fcgi-sse/client (src/index.js).

/** Where the client is. */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'paused' | 'stopped';

/**
 * Why the client stopped; it does not reconnect after any of them.
 * - `requested`: stop() was called.
 * - `revoked`: the server sent `revoked` (logout, an admin's revoke-all, a
 *   role change, or the login session ended): send the user to log in.
 * - `closed`: the server sent `close` (a publish with `"close": true`
 *   finished a topic this stream follows).
 * - `no_content`: the stream request was answered 204 (the stream session
 *   was finished that way).
 * - `unauthorized`: the stream session request was answered 401 (after one
 *   retry with a refreshed token when the token had expired), or getToken
 *   gave no token.
 * - `invalid_session`: new stream sessions were refused (401) twice in a row
 *   before they ever opened: the stream request lacks the fingerprint
 *   cookie (a cross-origin page without withCredentials, or no HTTPS).
 * - `rejected`: a status that retrying would only repeat (400, 403, 404,
 *   410...): a wrong baseUrl, a filter the server refuses, a sunset API version.
 * - `gave_up`: maxAttempts failures in a row.
 */
export type StopReason =
  | 'requested'
  | 'revoked'
  | 'closed'
  | 'no_content'
  | 'unauthorized'
  | 'invalid_session'
  | 'rejected'
  | 'gave_up';

/**
 * What made the client reconnect.
 * - `network`: EventSource lost the connection and retries by itself (also
 *   when the server ends a stream at its lifetime); delayMs is null.
 * - `refused`: EventSource gave up (the stream request got another status
 *   than 200); the client asks with HEAD why, then retries.
 * - `heartbeat`: nothing heard for 2 × heartbeatMs.
 * - `shutdown`: the server is restarting.
 * - `session`: the stream session request failed (no answer, 429, 5xx).
 * - `token`: getToken threw.
 */
export type ReconnectCause = 'network' | 'lifetime' | 'refused' | 'heartbeat' | 'shutdown' | 'session' | 'token';

interface StateChangeBase<S extends ConnectionState> {
  state: S;
  previous: ConnectionState;
}

/** What onState listeners receive. */
export type StateChange =
  | (StateChangeBase<'connecting'> & { attempt: number })
  | StateChangeBase<'open'>
  | (StateChangeBase<'reconnecting'> & {
      cause: ReconnectCause;
      /** failures since the last healthy connection (0 for network and shutdown) */
      attempt: number;
      /** the wait before the next try; null while EventSource retries itself or a probe runs */
      delayMs: number | null;
    })
  | StateChangeBase<'paused'>
  | (StateChangeBase<'stopped'> & {
      reason: StopReason;
      /** the HTTP status behind the reason, when there was one */
      status?: number | null;
      /** the problem's `code` (API.md §2), when the server gave one */
      code?: string | null;
      /** for gave_up: the last failure */
      cause?: ReconnectCause;
    });

/** The payloads of the events every stream carries. */
export interface ControlEvents {
  connected: { connection_id: string };
  ping: { time: string };
  reset: { time: string };
  shutdown: { time: string };
  revoked: { time: string };
  close: Record<string, never>;
}

/** Besides the payload, what a listener learns about an event. */
export interface EventMeta<T extends string = string> {
  type: T;
  /** the event's id, "<unix ms>-<seq>" (null for a frame without one) */
  id: string | null;
  /** the browser's event */
  event: MessageEvent;
}

/** The browser's environment, replaceable (tests, other runtimes). */
export interface StreamClientEnvironment {
  /** default: globalThis.EventSource */
  EventSource?: new (url: string, init?: { withCredentials?: boolean }) => EventSource;
  /** default: globalThis.fetch */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** default: globalThis.setTimeout */
  setTimeout?: (fn: () => void, ms: number) => unknown;
  /** default: globalThis.clearTimeout */
  clearTimeout?: (handle: unknown) => void;
  /** default: Date.now */
  now?: () => number;
  /** default: Math.random */
  random?: () => number;
  /** default: globalThis.document; only its visibilityState and visibilitychange are used */
  document?: Pick<Document, 'visibilityState' | 'addEventListener' | 'removeEventListener'> | null;
}

export interface StreamClientOptions extends StreamClientEnvironment {
  /**
   * The access token for POST /events/session: a string, or a function
   * called before each stream session request. `refresh` is true when the
   * server has just answered auth.token_expired: return a refreshed token.
   * Return null to stop (reason `unauthorized`); throw to retry later.
   */
  getToken: string | ((info: { refresh: boolean }) => string | null | undefined | Promise<string | null | undefined>);
  /** The API's root, default "/api/v2". */
  baseUrl?: string;
  /** events=: only these event types (up to 16). Control events always come. */
  events?: string[] | string;
  /** topics=: only events published with one of these topics (up to 16). */
  topics?: string[] | string;
  /** An id to resume from (e.g. kept from an earlier page). */
  lastEventId?: string | null;
  /** The server's sse.heartbeat_interval_ms, default 15000; 0 turns the monitor off. */
  heartbeatMs?: number;
  /** The server's sse.retry_ms, default 3000: after `shutdown` the client reconnects within it. */
  retryMs?: number;
  /** Full-jitter exponential backoff, default { baseMs: 1000, capMs: 30000 }. */
  backoff?: { baseMs?: number; capMs?: number };
  /** Failures in a row before stopping with `gave_up`; default Infinity. */
  maxAttempts?: number;
  /** Close the stream while the page is hidden and resume when it is visible. */
  pauseWhenHidden?: boolean;
  /** Send the fingerprint cookie cross-origin (fetch credentials "include", EventSource withCredentials). */
  withCredentials?: boolean;
  /** The server sent `reset`: events were lost, reload the state. */
  onReset?: (meta: EventMeta<'reset'>) => void | Promise<void>;
  /** What listeners, onReset and getToken throw; default console.error. */
  onError?: (error: unknown) => void;
}

/**
 * A stream of fcgi_sse events. M maps event types to their payloads, e.g.
 * `StreamClient<{ 'device.updated': Device; telemetry: Point }>`.
 */
export declare class StreamClient<M extends object = Record<string, unknown>> {
  constructor(options: StreamClientOptions);
  /** The current state. */
  readonly state: ConnectionState;
  /** The id a reconnect resumes from; keep it to resume a later client. */
  readonly lastEventId: string | null;
  /** Connects; no-op unless idle or stopped. */
  start(): void;
  /** Closes for good (reason `requested`); start() again resumes from lastEventId. */
  stop(): void;
  /**
   * Listens to one event type. The payload is parsed JSON (the raw text
   * when it is not JSON). Repeats after a resume are never delivered.
   * @returns a function that removes the listener
   */
  on<K extends (keyof M | keyof ControlEvents) & string>(
    type: K,
    listener: (data: K extends keyof ControlEvents ? ControlEvents[K] : K extends keyof M ? M[K] : unknown, meta: EventMeta<K>) => void,
  ): () => void;
  /** Listens to state changes. @returns a function that removes the listener */
  onState(listener: (change: StateChange) => void): () => void;
}

/** Same as `new StreamClient(options)`. */
export declare function createClient<M extends object = Record<string, unknown>>(options: StreamClientOptions): StreamClient<M>;

/** The control events, sent on every stream whatever `events` says. */
export declare const CONTROL_EVENTS: readonly ['connected', 'ping', 'reset', 'shutdown', 'revoked', 'close'];

/** Orders two event ids: -1, 0 or 1; NaN when either is not "<digits>-<digits>". */
export declare function compareEventIds(a: string, b: string): number;

/** Tells whether a value is an event id. */
export declare function isEventId(id: unknown): id is string;

/** The full-jitter backoff delay for attempt n (1 for the first retry). */
export declare function backoffDelay(attempt: number, limits: { baseMs: number; capMs: number }, random: () => number): number;
