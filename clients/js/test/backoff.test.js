import assert from 'node:assert/strict';
import { test } from 'node:test';

import { backoffDelay, parseRetryAfter } from '../src/backoff.js';

const limits = { baseMs: 1000, capMs: 30000 };

test('backoff ceiling doubles per attempt: random just below 1 gives ceiling - 1', () => {
  const almostOne = () => 0.9999999;
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => backoffDelay(n, limits, almostOne)),
    [999, 1999, 3999, 7999, 15999],
  );
});

test('backoff is capped, also for huge attempt numbers', () => {
  const almostOne = () => 0.9999999;
  assert.equal(backoffDelay(6, limits, almostOne), 29999);
  assert.equal(backoffDelay(60, limits, almostOne), 29999);
  assert.equal(backoffDelay(5000, limits, almostOne), 29999); // 2 ** 4999 is Infinity
});

test('backoff has full jitter: anywhere from 0 to the ceiling', () => {
  assert.equal(backoffDelay(4, limits, () => 0), 0);
  assert.equal(backoffDelay(4, limits, () => 0.5), 4000);
  assert.equal(backoffDelay(4, limits, () => 0.25), 2000);
});

test('backoff delays are whole milliseconds', () => {
  assert.equal(backoffDelay(1, { baseMs: 3, capMs: 100 }, () => 0.5), 1);
});

test('Retry-After: seconds, an HTTP date, nothing', () => {
  const now = Date.parse('2026-11-22T00:00:00Z');
  assert.equal(parseRetryAfter('5', now), 5000);
  assert.equal(parseRetryAfter(' 2 ', now), 2000);
  assert.equal(parseRetryAfter('Sun, 22 Nov 2026 00:00:09 GMT', now), 9000);
  assert.equal(parseRetryAfter('Sat, 21 Nov 2026 23:00:00 GMT', now), 0); // passed
  assert.equal(parseRetryAfter(null, now), 0);
  assert.equal(parseRetryAfter(undefined, now), 0);
  assert.equal(parseRetryAfter('soon', now), 0);
  assert.equal(parseRetryAfter('-3', now), 0);
});
