import assert from 'node:assert/strict';
import { test } from 'node:test';

import { environment, settings } from '../src/options.js';

test('defaults', () => {
  const s = settings({ getToken: 'T' });
  assert.equal(s.baseUrl, '/api/v2');
  assert.deepEqual([s.events, s.topics, s.lastEventId], [[], [], null]);
  assert.deepEqual([s.heartbeatMs, s.retryMs, s.maxAttempts], [15000, 3000, Infinity]);
  assert.deepEqual(s.backoff, { baseMs: 1000, capMs: 30000 });
  assert.deepEqual([s.pauseWhenHidden, s.withCredentials, s.onReset], [false, false, null]);
  assert.equal(s.getToken({ refresh: false }), 'T'); // a string becomes a function
});

test('baseUrl loses trailing slashes; lists may be comma strings; backoff may be partial', () => {
  const s = settings({ getToken: 'T', baseUrl: 'https://h/api/v2//', events: 'a,b.c', backoff: { capMs: 5000 } });
  assert.equal(s.baseUrl, 'https://h/api/v2');
  assert.deepEqual(s.events, ['a', 'b.c']);
  assert.deepEqual(s.backoff, { baseMs: 1000, capMs: 5000 });
});

test('names the server would refuse are refused here', () => {
  for (const events of [['a b'], [''], ['x'.repeat(65)], 'a,,b', [42]]) {
    assert.throws(() => settings({ getToken: 'T', events }), TypeError, String(events));
  }
  assert.doesNotThrow(() => settings({ getToken: 'T', topics: ['x'.repeat(128)] }));
  assert.throws(() => settings({ getToken: 'T', topics: ['x'.repeat(129)] }), TypeError);
});

test('the default environment calls the globals as globals, looked up when called', async () => {
  class ES {}
  const env = environment({ EventSource: ES });
  assert.equal(env.EventSource, ES);
  const saved = globalThis.fetch;
  let seen;
  globalThis.fetch = function (url, init) {
    seen = { self: this, url, init };
    return Promise.resolve('answer');
  };
  try {
    assert.equal(await env.fetch('/x', { method: 'HEAD' }), 'answer');
  } finally {
    globalThis.fetch = saved;
  }
  assert.equal(seen.url, '/x');
  assert.notEqual(seen.self, env); // never called as a method of env
  assert.equal(env.document, globalThis.document);
  assert.equal(environment({ EventSource: ES, document: null }).document, null);
  assert.equal(typeof env.now(), 'number');
});
