// Reconnection delays: exponential backoff with full jitter, and the
// server's Retry-After.

/**
 * The delay before reconnection attempt `attempt` (1 for the first retry):
 * a random whole number of milliseconds in [0, min(capMs, baseMs * 2^(attempt-1))).
 * @param {number} attempt  failures since the last healthy connection, >= 1
 * @param {{ baseMs: number, capMs: number }} limits
 * @param {() => number} random  uniform in [0, 1), like Math.random
 * @returns {number}
 */
export function backoffDelay(attempt, limits, random) {
  const ceiling = Math.min(limits.capMs, limits.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Milliseconds a Retry-After header value asks to wait: delta-seconds or
 * an HTTP date. 0 for a missing or unreadable value, or a date passed.
 * @param {string | null | undefined} value
 * @param {number} nowMs  the current time, for a date
 * @returns {number}
 */
export function parseRetryAfter(value, nowMs) {
  if (value == null) return 0;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? 0 : Math.max(0, at - nowMs);
}
