import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createHeartbeat } from '../src/heartbeat.js';
import { FakeClock } from './fakes.js';

function monitor(timeoutMs = 30000) {
  const clock = new FakeClock();
  const timeouts = [];
  const hb = createHeartbeat({
    timeoutMs,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    onTimeout: (silent) => timeouts.push(silent),
  });
  return { clock, hb, timeouts };
}

test('silence for the whole timeout fires once', () => {
  const { clock, hb, timeouts } = monitor();
  hb.start();
  clock.advance(29999);
  assert.deepEqual(timeouts, []);
  clock.advance(1);
  assert.deepEqual(timeouts, [30000]);
  assert.equal(hb.running, false);
  clock.advance(100000);
  assert.equal(timeouts.length, 1);
});

test('each beat restarts the silence; one timer however many beats', () => {
  const { clock, hb, timeouts } = monitor();
  hb.start();
  for (let i = 0; i < 10; i++) {
    clock.advance(15000);
    hb.beat();
  }
  assert.deepEqual(timeouts, []);
  assert.equal(clock.pending, 1);
  clock.advance(29999);
  assert.deepEqual(timeouts, []);
  clock.advance(1);
  assert.deepEqual(timeouts, [30000]);
});

test('a timer that fires late reports the real silence', () => {
  const { clock, hb, timeouts } = monitor();
  hb.start();
  clock.jump(120000); // the machine slept; the timer had no chance to run
  clock.advance(0);
  assert.deepEqual(timeouts, [120000]);
});

test('stop cancels; start watches again from now', () => {
  const { clock, hb, timeouts } = monitor();
  hb.start();
  clock.advance(20000);
  hb.stop();
  assert.equal(clock.pending, 0);
  clock.advance(60000);
  assert.deepEqual(timeouts, []);
  hb.start();
  hb.start(); // a restart leaves one timer
  assert.equal(clock.pending, 1);
  clock.advance(30000);
  assert.deepEqual(timeouts, [30000]);
});

test('a timeout of 0 disables the monitor', () => {
  const { clock, hb, timeouts } = monitor(0);
  hb.start();
  assert.equal(clock.pending, 0);
  clock.advance(1e9);
  assert.deepEqual(timeouts, []);
});

test('a new timeout applies at once to the silence so far', () => {
  const clock = new FakeClock();
  const fired = [];
  const hb = createHeartbeat({ timeoutMs: 30000, now: clock.now, setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout, onTimeout: (ms) => fired.push(ms) });
  hb.start();
  clock.advance(1500);
  hb.setTimeoutMs(2000);
  clock.advance(499);
  assert.deepEqual(fired, []);
  clock.advance(1);
  assert.deepEqual(fired, [2000]);
});
