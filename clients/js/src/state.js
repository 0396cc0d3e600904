// Connection states and the moves between them:
//
//   idle → connecting → open → reconnecting → connecting → open ...
//   reconnecting → open          EventSource reconnected by itself
//   reconnecting → reconnecting  the next attempt
//   any → paused                 the page is hidden (also at start()); paused → connecting
//   any → stopped                stop(), or an answer that retrying cannot change
//   stopped → connecting         start() again

/** @type {Readonly<Record<string, readonly string[]>>} */
export const TRANSITIONS = Object.freeze({
  idle: ['connecting', 'paused', 'stopped'],
  connecting: ['open', 'reconnecting', 'paused', 'stopped'],
  open: ['reconnecting', 'paused', 'stopped'],
  reconnecting: ['connecting', 'open', 'reconnecting', 'paused', 'stopped'],
  paused: ['connecting', 'stopped'],
  stopped: ['connecting', 'paused'],
});

/**
 * Tells whether the client may move from one state to another.
 * @param {string} from
 * @param {string} to
 * @returns {boolean}
 */
export function canMove(from, to) {
  return (TRANSITIONS[from] || []).includes(to);
}
