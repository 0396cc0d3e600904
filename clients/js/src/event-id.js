// Event ids and the resume point: which id a reconnect resumes from, and
// which events are repeats of ones already delivered.
//
// fcgi_sse ids are Redis Stream ids, "<unix ms>-<seq>", ordered first by
// the milliseconds, then by the sequence number. Both parts are compared as
// decimal digit strings, so no id is too large to compare exactly.

const ID = /^(\d+)-(\d+)$/;

function compareDigits(a, b) {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  if (x === y) return 0;
  return x < y ? -1 : 1;
}

/**
 * Tells whether id is a stream id ("<ms>-<seq>").
 * @param {unknown} id
 * @returns {boolean}
 */
export function isEventId(id) {
  return typeof id === 'string' && ID.test(id);
}

/**
 * Orders two stream ids.
 * @param {string} a
 * @param {string} b
 * @returns {number} -1, 0 or 1; NaN when either is not a stream id.
 */
export function compareEventIds(a, b) {
  const x = isEventId(a) && ID.exec(a);
  const y = isEventId(b) && ID.exec(b);
  if (!x || !y) return NaN;
  return compareDigits(x[1], y[1]) || compareDigits(x[2], y[2]);
}

/**
 * The client's place in its tenant's events. `accept` is for data events
 * (a repeat is refused), `advance` for control events (ping, connected...
 * carry the stream's place but are never repeats), `reset` for the server's
 * `reset`, whose id may lie before the current one (history was lost).
 * @param {string | null | undefined} initial  an id to resume from, if any
 */
export function createResumePoint(initial) {
  let last = isEventId(initial) ? initial : null;

  return {
    /** @returns {string | null} the id to resume from */
    get id() {
      return last;
    },
    /**
     * @param {string | null} id  the event's id
     * @returns {boolean} false when the event was delivered already
     */
    accept(id) {
      if (!isEventId(id)) return true; // nothing to compare: cannot be a known repeat
      if (last !== null && compareEventIds(id, last) <= 0) return false;
      last = id;
      return true;
    },
    /** @param {string | null} id  moves forward only */
    advance(id) {
      if (isEventId(id) && (last === null || compareEventIds(id, last) > 0)) last = id;
    },
    /** @param {string | null} id  the new place, even one before the current */
    reset(id) {
      if (isEventId(id)) last = id;
    },
  };
}
