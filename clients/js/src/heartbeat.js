// The heartbeat monitor: the server sends `event: ping` every heartbeat
// interval, so silence for longer than the timeout means the connection is
// dead even when the browser still believes it is open.
//
// A beat only records the time; one timer checks on expiry and re-arms
// itself for what remains, so a busy stream costs no timer per event. Since
// it compares clock readings, a timer that fired late (a throttled
// background tab, a laptop waking up) still sees the real silence.

/**
 * @param {object} o
 * @param {number} o.timeoutMs  silence that counts as dead; 0 disables the monitor
 * @param {() => number} o.now  milliseconds, like Date.now
 * @param {(fn: () => void, ms: number) => unknown} o.setTimeout
 * @param {(handle: unknown) => void} o.clearTimeout
 * @param {(silentMs: number) => void} o.onTimeout  called once per start
 */
export function createHeartbeat(o) {
  let last = 0;
  let timer = null;

  function stop() {
    if (timer !== null) o.clearTimeout(timer);
    timer = null;
  }

  function check() {
    timer = null;
    const silent = o.now() - last;
    if (silent >= o.timeoutMs) o.onTimeout(silent);
    else timer = o.setTimeout(check, o.timeoutMs - silent);
  }

  return {
    /** Starts (or restarts) watching from now. */
    start() {
      stop();
      last = o.now();
      if (o.timeoutMs > 0) timer = o.setTimeout(check, o.timeoutMs);
    },
    /** The server was heard from. */
    beat() {
      last = o.now();
    },
    /** Stops watching; no onTimeout until the next start. */
    stop,
    /** A new timeout (the server told its heartbeat), in force at once. */
    setTimeoutMs(ms) {
      o.timeoutMs = ms;
      if (timer === null) return;
      stop();
      if (ms > 0) timer = o.setTimeout(check, Math.max(0, ms - (o.now() - last)));
    },
    /** @returns {boolean} whether it is watching */
    get running() {
      return timer !== null;
    },
  };
}
