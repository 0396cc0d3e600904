import assert from 'node:assert/strict';
import { test } from 'node:test';

import { StreamClient } from '../src/client.js';
import { FakeClock, FakeDocument, FakeEventSource, FakeFetch, flush, response, sessionBody } from './fakes.js';

const SESSION = 'POST /api/v2/events/session';
const PROBE = 'HEAD /api/v2/events/stream';

// A client in a fake browser: random() is 0.5, so a backoff delay is half
// its ceiling (500, 1000, 2000... ms with the defaults).
function setup(options = {}) {
  FakeEventSource.reset();
  const clock = new FakeClock();
  const http = new FakeFetch();
  const states = [];
  const errors = [];
  const client = new StreamClient({
    getToken: async () => 'TOKEN',
    EventSource: FakeEventSource,
    fetch: http.fetch,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random: () => 0.5,
    document: null,
    onError: (err) => errors.push(err),
    ...options,
  });
  client.onState((change) => states.push(change));
  return { client, clock, http, states, errors, names: () => states.map((c) => c.state) };
}

// Starts the client and opens its stream; the server says connected at `id`.
async function connect(t, id = '100-0', session = 'S1') {
  t.http.on(SESSION, response(201, sessionBody(t.clock, session)));
  t.client.start();
  await flush();
  const es = FakeEventSource.last;
  es.open();
  es.emit('connected', { connection_id: 'c1' }, id);
  return es;
}

function last(states) {
  return states[states.length - 1];
}

// ------------------------------------------------------------------ connecting

test('start: token → stream session → EventSource on the session URL', async () => {
  const t = setup({ events: ['telemetry', 'device.updated'], topics: 'device:42' });
  t.http.on(SESSION, response(201, sessionBody(t.clock, 'S1')));
  t.client.start();
  assert.equal(t.client.state, 'connecting');
  await flush();
  const [post] = t.http.calls;
  assert.equal(post.init.headers.Authorization, 'Bearer TOKEN');
  assert.equal(post.init.credentials, 'same-origin');
  const es = FakeEventSource.last;
  assert.equal(FakeEventSource.all.length, 1);
  assert.equal(es.url.split('?')[0], '/api/v2/events/stream');
  assert.equal(es.query.get('session_id'), 'S1');
  assert.equal(es.query.get('events'), 'telemetry,device.updated');
  assert.equal(es.query.get('topics'), 'device:42');
  assert.equal(es.query.has('last_event_id'), false);
  assert.equal(es.withCredentials, false);
  es.open();
  assert.deepEqual(t.names(), ['connecting', 'open']);
  assert.deepEqual(t.states[0], { state: 'connecting', previous: 'idle', attempt: 0 });
});

test('baseUrl and withCredentials: cookie sent cross-origin by fetch and EventSource', async () => {
  const t = setup({ baseUrl: 'https://api.example/api/v2/', withCredentials: true });
  t.http.on('POST https://api.example/api/v2/events/session', response(201, sessionBody(t.clock)));
  t.client.start();
  await flush();
  assert.equal(t.http.calls[0].init.credentials, 'include');
  assert.equal(FakeEventSource.last.withCredentials, true);
  assert.ok(FakeEventSource.last.url.startsWith('https://api.example/api/v2/events/stream?'));
});

test('a stored lastEventId is the first connect\'s resume point', async () => {
  const t = setup({ lastEventId: '1795306000123-4' });
  t.http.on(SESSION, response(201, sessionBody(t.clock)));
  t.client.start();
  await flush();
  assert.equal(FakeEventSource.last.query.get('last_event_id'), '1795306000123-4');
});

test('start twice opens one stream; start after stop connects again', async () => {
  const t = setup();
  const es = await connect(t);
  t.client.start();
  await flush();
  assert.equal(FakeEventSource.all.length, 1);
  t.client.stop();
  assert.equal(es.closed, true);
  t.http.on(SESSION, response(201, sessionBody(t.clock, 'S2')));
  t.client.start();
  await flush();
  assert.equal(FakeEventSource.all.length, 2);
  assert.equal(FakeEventSource.last.query.get('last_event_id'), '100-0'); // resumes where it stopped
});

test('bad options are refused at once', () => {
  const base = { EventSource: FakeEventSource, getToken: 't' };
  assert.throws(() => new StreamClient({ EventSource: FakeEventSource }), TypeError);
  if (typeof globalThis.EventSource === 'undefined') {
    assert.throws(() => new StreamClient({ getToken: 't' }), TypeError); // no EventSource to default to
  }
  assert.throws(() => new StreamClient({ ...base, events: ['a b'] }), TypeError);
  assert.throws(() => new StreamClient({ ...base, topics: ['x'.repeat(129)] }), TypeError);
  assert.throws(() => new StreamClient({ ...base, events: Array.from({ length: 17 }, (_, i) => `e${i}`) }), TypeError);
  assert.doesNotThrow(() => new StreamClient({ ...base, events: 'a,b', topics: ['task:7f3a'] }));
});

// ------------------------------------------------------------------ events

test('typed listeners get the parsed payload and the id', async () => {
  const t = setup();
  const got = [];
  t.client.on('device.updated', (data, meta) => got.push([data, meta.id, meta.type]));
  const es = await connect(t);
  es.emit('device.updated', { id: 'd1', version: 3 }, '101-0');
  es.emit('device.updated', 'not json', '102-0');
  assert.deepEqual(got, [
    [{ id: 'd1', version: 3 }, '101-0', 'device.updated'],
    ['not json', '102-0', 'device.updated'],
  ]);
  assert.equal(t.client.lastEventId, '102-0');
});

test('a listener added while open hears the next event; the returned function removes it', async () => {
  const t = setup();
  const es = await connect(t);
  const got = [];
  const off = t.client.on('task.progress', (d) => got.push(d.pct));
  es.emit('task.progress', { pct: 40 }, '101-0');
  off();
  es.emit('task.progress', { pct: 50 }, '102-0');
  assert.deepEqual(got, [40]);
  assert.throws(() => t.client.on('error', () => {}), TypeError);
  assert.throws(() => t.client.on('x', 'nope'), TypeError);
});

test('repeats replayed after a resume are dropped; ping moves the resume point', async () => {
  const t = setup();
  const got = [];
  t.client.on('telemetry', (d, m) => got.push(m.id));
  const es = await connect(t, '100-0');
  es.emit('telemetry', {}, '101-0');
  es.emit('telemetry', {}, '101-0'); // the same event again
  es.emit('telemetry', {}, '100-5'); // older than the place
  es.emit('ping', { time: 'x' }, '150-0'); // events= skipped some
  es.emit('telemetry', {}, '150-0');
  es.emit('telemetry', {}, '150-1');
  assert.deepEqual(got, ['101-0', '150-1']);
  assert.equal(t.client.lastEventId, '150-1');
});

test('a fresh stream while Redis is away: pings without id, then connected gives the place', async () => {
  const t = setup();
  t.http.on(SESSION, response(201, sessionBody(t.clock)));
  t.client.start();
  await flush();
  const es = FakeEventSource.last;
  es.open();
  es.emit('ping', { time: 'x' }); // no id: the stream has no place yet
  assert.equal(t.client.lastEventId, null);
  es.emit('connected', { connection_id: 'c' }, '42-0');
  es.emit('ping', { time: 'x' }, '42-0');
  assert.equal(t.client.lastEventId, '42-0');
});

test('reset: onReset, the resume point may move back, later events are delivered', async () => {
  const resets = [];
  const t = setup({ onReset: (meta) => resets.push(meta.id) });
  const got = [];
  t.client.on('telemetry', (d, m) => got.push(m.id));
  const es = await connect(t, '900-0');
  es.emit('reset', { time: 'x' }, '100-0'); // history was lost: its newest trimmed id
  es.emit('telemetry', {}, '101-0');
  assert.deepEqual(resets, ['100-0']);
  assert.deepEqual(got, ['101-0']);
  assert.equal(t.client.lastEventId, '101-0');
  assert.equal(t.client.state, 'open');
});

test('a listener or onReset that throws or rejects goes to onError; the stream goes on', async () => {
  const t = setup({ onReset: async () => Promise.reject(new Error('reload failed')) });
  t.client.on('telemetry', () => {
    throw new Error('boom');
  });
  const got = [];
  t.client.on('telemetry', (d, m) => got.push(m.id));
  const es = await connect(t);
  es.emit('telemetry', {}, '101-0');
  es.emit('reset', {}, '101-0');
  await flush();
  assert.deepEqual(got, ['101-0']);
  assert.deepEqual(t.errors.map((e) => e.message), ['boom', 'reload failed']);
  assert.equal(t.client.state, 'open');
});

// ------------------------------------------------------------------ EventSource retrying by itself

test('a dropped connection: EventSource retries by itself, no new session', async () => {
  const t = setup();
  const es = await connect(t);
  es.drop();
  assert.deepEqual(last(t.states), { state: 'reconnecting', previous: 'open', cause: 'network', attempt: 0, delayMs: null });
  es.drop(); // retries failing: reported once
  assert.equal(t.states.filter((c) => c.state === 'reconnecting').length, 1);
  es.open();
  assert.equal(t.client.state, 'open');
  assert.equal(FakeEventSource.all.length, 1);
  assert.equal(t.http.calls.length, 1);
});

// ------------------------------------------------------------------ EventSource giving up

test('refused: HEAD probe with Last-Event-ID, backoff, then the same session resumes', async () => {
  const t = setup();
  const es = await connect(t, '100-0');
  es.emit('ping', {}, '120-0');
  t.http.on(PROBE, response(503, undefined, { 'Retry-After': '0' }));
  es.refuse();
  assert.deepEqual(last(t.states), { state: 'reconnecting', previous: 'open', cause: 'refused', attempt: 0, delayMs: null });
  await flush();
  const probe = t.http.callsTo(PROBE)[0];
  assert.equal(probe.url, es.url);
  assert.deepEqual(probe.init.headers, { 'Last-Event-ID': '120-0' });
  assert.deepEqual(last(t.states), { state: 'reconnecting', previous: 'reconnecting', cause: 'refused', attempt: 1, delayMs: 500 });
  t.clock.advance(499);
  assert.equal(FakeEventSource.all.length, 1);
  t.clock.advance(1);
  await flush();
  assert.equal(t.http.callsTo(SESSION).length, 1); // no new session: this one still takes reconnects
  const next = FakeEventSource.last;
  assert.equal(FakeEventSource.all.length, 2);
  assert.equal(next.query.get('session_id'), 'S1');
  assert.equal(next.query.get('last_event_id'), '120-0');
  next.open();
  assert.deepEqual(t.names().slice(-2), ['connecting', 'open']);
});

test('refused, probe 401 (session expired or login gone): a new session from the last id', async () => {
  const t = setup();
  const es = await connect(t, '100-0');
  t.http.on(PROBE, response(401)).on(SESSION, response(201, sessionBody(t.clock, 'S2')));
  es.refuse();
  await flush();
  t.clock.advance(t.clock.nextIn());
  await flush();
  assert.equal(t.http.callsTo(SESSION).length, 2);
  assert.equal(FakeEventSource.last.query.get('session_id'), 'S2');
  assert.equal(FakeEventSource.last.query.get('last_event_id'), '100-0');
});

test('refused, probe 204: the publisher finished the stream → stopped no_content', async () => {
  const t = setup();
  const es = await connect(t);
  t.http.on(PROBE, response(204));
  es.refuse();
  await flush();
  assert.deepEqual(last(t.states), { state: 'stopped', previous: 'reconnecting', reason: 'no_content', status: 204, code: null });
  assert.equal(t.clock.pending, 0);
});

test('refused, probe 400 (a filter the server refuses): stopped rejected', async () => {
  const t = setup();
  const es = await connect(t);
  t.http.on(PROBE, response(400));
  es.refuse();
  await flush();
  assert.equal(last(t.states).reason, 'rejected');
  assert.equal(last(t.states).status, 400);
});

test('refused, probe unanswered: retried with backoff', async () => {
  const t = setup();
  const es = await connect(t);
  t.http.on(PROBE, new TypeError('offline'));
  es.refuse();
  await flush();
  assert.equal(last(t.states).cause, 'refused');
  assert.equal(last(t.states).delayMs, 500);
});

test('a hung probe is bounded by the heartbeat timeout', async () => {
  const t = setup();
  const es = await connect(t);
  es.refuse(); // no probe answer queued: it hangs
  await flush();
  t.clock.advance(30000);
  assert.deepEqual(last(t.states), { state: 'reconnecting', previous: 'reconnecting', cause: 'heartbeat', attempt: 1, delayMs: 500 });
});

test('new sessions refused twice before they ever opened (no cookie on the stream) → invalid_session', async () => {
  const t = setup();
  t.http
    .on(SESSION, response(201, sessionBody(t.clock, 'S1')), response(201, sessionBody(t.clock, 'S2')))
    .on(PROBE, response(401), response(401));
  t.client.start();
  await flush();
  FakeEventSource.last.refuse();
  await flush();
  assert.equal(t.client.state, 'reconnecting');
  t.clock.advance(t.clock.nextIn());
  await flush();
  assert.equal(FakeEventSource.last.query.get('session_id'), 'S2');
  FakeEventSource.last.refuse();
  await flush();
  assert.deepEqual(last(t.states), {
    state: 'stopped', previous: 'reconnecting', reason: 'invalid_session', status: 401, code: 'events.invalid_session',
  });
});

test('a single-use session (token without fingerprint) is never reused', async () => {
  const t = setup();
  t.http.on(SESSION, response(201, sessionBody(t.clock, 'S1', { singleUse: true })), response(201, sessionBody(t.clock, 'S2')));
  t.client.start();
  await flush();
  const es = FakeEventSource.last;
  es.open();
  es.emit('connected', {}, '5-0');
  t.http.on(PROBE, response(503));
  es.refuse();
  await flush();
  t.clock.advance(t.clock.nextIn());
  await flush();
  assert.equal(t.http.callsTo(SESSION).length, 2);
  assert.equal(FakeEventSource.last.query.get('session_id'), 'S2');
});

test('a session near its reconnect_until is replaced by a new one', async () => {
  const t = setup({ heartbeatMs: 0 });
  t.http.on(SESSION, response(201, sessionBody(t.clock, 'S1', { ageS: 60 })), response(201, sessionBody(t.clock, 'S2')));
  t.client.start();
  await flush();
  const es = FakeEventSource.last;
  es.open();
  es.emit('connected', {}, '5-0');
  t.clock.advance(56000); // 4 s left: too close to its end
  es.emit('ping', {}, '6-0');
  t.http.on(PROBE, response(503));
  es.refuse();
  await flush();
  t.clock.advance(t.clock.nextIn());
  await flush();
  assert.equal(FakeEventSource.last.query.get('session_id'), 'S2');
  assert.equal(FakeEventSource.last.query.get('last_event_id'), '6-0');
});

// ------------------------------------------------------------------ session requests

test('session request 401 token_expired: getToken({ refresh: true }) once, then it works', async () => {
  const asked = [];
  const t = setup({ getToken: async ({ refresh }) => (asked.push(refresh), refresh ? 'NEW' : 'OLD') });
  t.http.on(SESSION, response(401, { code: 'auth.token_expired' }), response(201, sessionBody(t.clock)));
  t.client.start();
  await flush();
  assert.deepEqual(asked, [false, true]);
  assert.deepEqual(t.http.calls.map((c) => c.init.headers.Authorization), ['Bearer OLD', 'Bearer NEW']);
  assert.equal(FakeEventSource.all.length, 1);
});

test('session request 401 again after a refresh, or for a revoked login → stopped unauthorized', async () => {
  const t = setup();
  t.http.on(SESSION, response(401, { code: 'auth.token_expired' }), response(401, { code: 'auth.token_expired' }));
  t.client.start();
  await flush();
  assert.deepEqual(last(t.states), { state: 'stopped', previous: 'connecting', reason: 'unauthorized', status: 401, code: 'auth.token_expired' });

  const u = setup();
  u.http.on(SESSION, response(401, { code: 'auth.session_revoked' }));
  u.client.start();
  await flush();
  assert.equal(u.http.calls.length, 1); // no refresh for a login that ended
  assert.equal(last(u.states).code, 'auth.session_revoked');
});

test('getToken returning nothing → stopped unauthorized without a request', async () => {
  const t = setup({ getToken: () => null });
  t.client.start();
  await flush();
  assert.equal(t.http.calls.length, 0);
  assert.deepEqual(last(t.states), { state: 'stopped', previous: 'connecting', reason: 'unauthorized', status: null, code: null });
});

test('getToken throwing → onError and a retry with backoff', async () => {
  let fail = true;
  const t = setup({
    getToken: async () => {
      if (fail) throw new Error('refresh endpoint down');
      return 'T';
    },
  });
  t.client.start();
  await flush();
  assert.equal(t.errors[0].message, 'refresh endpoint down');
  assert.equal(last(t.states).cause, 'token');
  fail = false;
  t.http.on(SESSION, response(201, sessionBody(t.clock)));
  t.clock.advance(t.clock.nextIn());
  await flush();
  assert.equal(FakeEventSource.all.length, 1);
});

test('session request 503 with Retry-After: waits at least that long', async () => {
  const t = setup();
  t.http.on(SESSION, response(503, { code: 'server.shutting_down' }, { 'Retry-After': '5' }));
  t.client.start();
  await flush();
  assert.deepEqual(last(t.states), { state: 'reconnecting', previous: 'connecting', cause: 'session', attempt: 1, delayMs: 5000 });
});

test('session request 403/404 → stopped rejected', async () => {
  const t = setup();
  t.http.on(SESSION, response(404, { code: 'route.not_found' }));
  t.client.start();
  await flush();
  assert.deepEqual(last(t.states), { state: 'stopped', previous: 'connecting', reason: 'rejected', status: 404, code: 'route.not_found' });
});

// ------------------------------------------------------------------ backoff

test('backoff grows with each failure, is capped, and resets once the server is heard', async () => {
  const t = setup({ backoff: { baseMs: 1000, capMs: 4000 } });
  t.client.start();
  const delays = [];
  for (let i = 0; i < 5; i++) {
    t.http.on(SESSION, new TypeError('offline'));
    await flush();
    delays.push(last(t.states).delayMs);
    t.clock.advance(last(t.states).delayMs);
  }
  assert.deepEqual(delays, [500, 1000, 2000, 2000, 2000]); // half of 1000, 2000, 4000 (cap), 4000, 4000
  assert.deepEqual(t.states.filter((c) => c.state === 'reconnecting').map((c) => c.attempt), [1, 2, 3, 4, 5]);
  t.http.on(SESSION, response(201, sessionBody(t.clock)));
  await flush();
  const es = FakeEventSource.last;
  es.open();
  es.emit('connected', {}, '1-0');
  t.http.on(PROBE, response(503));
  es.refuse();
  await flush();
  assert.equal(last(t.states).attempt, 1);
  assert.equal(last(t.states).delayMs, 500);
});

test('open alone is not healthy: a server that never sends a frame keeps backing off', async () => {
  const t = setup();
  const es = await connect(t);
  t.http.on(PROBE, response(503), response(503));
  es.refuse();
  await flush();
  t.clock.advance(500);
  await flush();
  FakeEventSource.last.open();
  FakeEventSource.last.refuse();
  await flush();
  assert.equal(last(t.states).attempt, 2);
  assert.equal(last(t.states).delayMs, 1000);
});

test('full jitter: the delay uses random()', async () => {
  const t = setup({ random: () => 0 });
  t.http.on(SESSION, new TypeError('offline'));
  t.client.start();
  await flush();
  assert.equal(last(t.states).delayMs, 0);
});

test('maxAttempts: stopped gave_up after that many failures in a row', async () => {
  const t = setup({ maxAttempts: 2 });
  t.http.on(SESSION, new TypeError('x'), new TypeError('x'), new TypeError('x'));
  t.client.start();
  await flush();
  t.clock.advance(t.clock.nextIn());
  await flush();
  assert.equal(t.client.state, 'reconnecting');
  t.clock.advance(t.clock.nextIn());
  await flush();
  assert.deepEqual(last(t.states), { state: 'stopped', previous: 'connecting', reason: 'gave_up', cause: 'session' });
  assert.equal(t.clock.pending, 0);
});

// ------------------------------------------------------------------ heartbeat

test('pings keep the stream; no ping within 2 × heartbeatMs → reconnect from the last id', async () => {
  const t = setup({ heartbeatMs: 15000 });
  const es = await connect(t, '100-0');
  for (let i = 0; i < 4; i++) {
    t.clock.advance(15000);
    es.emit('ping', { time: 'x' }, '100-0');
  }
  assert.equal(t.client.state, 'open');
  t.clock.advance(29999);
  assert.equal(t.client.state, 'open');
  t.clock.advance(1);
  assert.deepEqual(last(t.states), { state: 'reconnecting', previous: 'open', cause: 'heartbeat', attempt: 1, delayMs: 500 });
  assert.equal(es.closed, true);
  t.clock.advance(500);
  await flush();
  assert.equal(FakeEventSource.all.length, 2);
  assert.equal(FakeEventSource.last.query.get('session_id'), 'S1');
  assert.equal(FakeEventSource.last.query.get('last_event_id'), '100-0');
});

test('events count as signs of life too', async () => {
  const t = setup({ heartbeatMs: 1000 });
  t.client.on('telemetry', () => {});
  const es = await connect(t, '1-0');
  for (let i = 2; i < 50; i++) {
    t.clock.advance(1500);
    es.emit('telemetry', {}, `${i}-0`);
  }
  assert.equal(t.client.state, 'open');
});

test('the heartbeat also ends EventSource retrying by itself for too long', async () => {
  const t = setup();
  const es = await connect(t);
  t.clock.advance(10000);
  es.drop();
  t.clock.advance(19999);
  assert.equal(last(t.states).cause, 'network');
  t.clock.advance(1);
  assert.equal(last(t.states).cause, 'heartbeat');
  assert.equal(es.closed, true);
});

test('a hung session request is given up after the heartbeat timeout', async () => {
  const t = setup();
  t.client.start(); // no answer queued: the POST hangs
  await flush();
  t.clock.advance(30000);
  assert.deepEqual(last(t.states), { state: 'reconnecting', previous: 'connecting', cause: 'heartbeat', attempt: 1, delayMs: 500 });
});

test('heartbeatMs 0 disables the monitor', async () => {
  const t = setup({ heartbeatMs: 0 });
  await connect(t);
  assert.equal(t.clock.pending, 0);
  t.clock.advance(1e7);
  assert.equal(t.client.state, 'open');
});

// ------------------------------------------------------------------ control events

test('revoked → stopped revoked; nothing left running', async () => {
  const t = setup();
  const es = await connect(t);
  es.emit('revoked', { time: 'x' }, '100-0');
  assert.deepEqual(last(t.states), { state: 'stopped', previous: 'open', reason: 'revoked' });
  assert.equal(es.closed, true);
  assert.equal(t.clock.pending, 0);
});

test('close (publisher finished the topic) → stopped closed, before EventSource hits the 204', async () => {
  const t = setup({ topics: ['task:7f3a'] });
  const got = [];
  t.client.on('task.done', (d) => got.push(d));
  const es = await connect(t);
  es.emit('task.done', { ok: true }, '101-0');
  es.emit('close', {}, '101-0');
  assert.deepEqual(got, [{ ok: true }]);
  assert.equal(last(t.states).reason, 'closed');
  assert.equal(es.closed, true);
});

test('shutdown → reconnect after a jittered share of retryMs, same session, from the last id', async () => {
  const t = setup({ retryMs: 3000, random: () => 0.25 });
  const es = await connect(t, '100-0');
  es.emit('shutdown', { time: 'x' }, '100-0');
  assert.equal(es.closed, true);
  assert.deepEqual(last(t.states), { state: 'reconnecting', previous: 'open', cause: 'shutdown', attempt: 0, delayMs: 750 });
  t.clock.advance(750);
  await flush();
  assert.equal(FakeEventSource.all.length, 2);
  assert.equal(FakeEventSource.last.query.get('session_id'), 'S1');
  assert.equal(FakeEventSource.last.query.get('last_event_id'), '100-0');
});

test('listeners of control events are called before the client acts on them', async () => {
  const t = setup();
  const seen = [];
  t.client.on('revoked', () => seen.push(t.client.state));
  const es = await connect(t);
  es.emit('revoked', {}, '100-0');
  assert.deepEqual(seen, ['open']);
});

// ------------------------------------------------------------------ stop, pause

test('stop during a pending session request: its late answer opens nothing', async () => {
  const t = setup();
  let answer;
  t.http.on(SESSION, () => new Promise((resolve) => (answer = resolve)));
  t.client.start();
  await flush();
  t.client.stop();
  answer(response(201, sessionBody(t.clock)));
  await flush();
  assert.equal(FakeEventSource.all.length, 0);
  assert.deepEqual(t.names(), ['connecting', 'stopped']);
  assert.equal(last(t.states).reason, 'requested');
  assert.equal(t.clock.pending, 0);
});

test('stop during a reconnect delay cancels it', async () => {
  const t = setup();
  t.http.on(SESSION, new TypeError('x'));
  t.client.start();
  await flush();
  assert.equal(t.clock.pending, 1);
  t.client.stop();
  assert.equal(t.clock.pending, 0);
  t.clock.advance(1e6);
  await flush();
  assert.equal(t.http.calls.length, 1);
});

test('a state listener that stops the client on reconnecting: no reconnect follows', async () => {
  const t = setup();
  t.client.onState((c) => c.state === 'reconnecting' && t.client.stop());
  const es = await connect(t);
  es.emit('shutdown', {}, '100-0');
  assert.equal(t.client.state, 'stopped');
  assert.equal(t.clock.pending, 0);
});

test('an event listener that stops the client: no further bookkeeping', async () => {
  const t = setup();
  const es = await connect(t);
  t.client.on('shutdown', () => t.client.stop());
  es.emit('shutdown', {}, '100-0');
  assert.equal(last(t.states).reason, 'requested');
  assert.equal(t.clock.pending, 0);
});

test('pauseWhenHidden: hidden closes the stream, visible resumes from the last id', async () => {
  const doc = new FakeDocument('visible');
  const t = setup({ pauseWhenHidden: true, document: doc });
  t.client.on('telemetry', () => {});
  const es = await connect(t, '100-0');
  es.emit('telemetry', {}, '101-0');
  doc.set('hidden');
  assert.equal(t.client.state, 'paused');
  assert.equal(es.closed, true);
  assert.equal(t.clock.pending, 0);
  t.clock.advance(3600e3);
  doc.set('visible');
  await flush();
  assert.deepEqual(t.names().slice(-2), ['paused', 'connecting']);
  const next = FakeEventSource.last;
  assert.equal(next.query.get('session_id'), 'S1');
  assert.equal(next.query.get('last_event_id'), '101-0');
  next.open();
  assert.deepEqual(t.names(), ['connecting', 'open', 'paused', 'connecting', 'open']);
});

test('pauseWhenHidden: hidden at start waits; hidden during a reconnect delay cancels it', async () => {
  const doc = new FakeDocument('hidden');
  const t = setup({ pauseWhenHidden: true, document: doc });
  t.client.start();
  assert.equal(t.client.state, 'paused');
  assert.equal(t.http.calls.length, 0);
  t.http.on(SESSION, new TypeError('x'));
  doc.set('visible');
  await flush();
  assert.equal(t.client.state, 'reconnecting');
  doc.set('hidden');
  assert.equal(t.client.state, 'paused');
  assert.equal(t.clock.pending, 0);
});

test('pauseWhenHidden: stop removes the visibility listener; without the option none is added', async () => {
  const doc = new FakeDocument('visible');
  const t = setup({ pauseWhenHidden: true, document: doc });
  await connect(t);
  assert.equal(doc.listening, 1);
  t.client.stop();
  assert.equal(doc.listening, 0);
  doc.set('hidden');
  doc.set('visible');
  assert.equal(t.client.state, 'stopped');

  const other = new FakeDocument('visible');
  const u = setup({ document: other });
  await connect(u);
  assert.equal(other.listening, 0);
  other.set('hidden');
  assert.equal(u.client.state, 'open');
});

test('events of a closed EventSource are ignored', async () => {
  const t = setup();
  const got = [];
  t.client.on('telemetry', (d, m) => got.push(m.id));
  const es = await connect(t);
  es.emit('shutdown', {}, '100-0');
  es.closed = false; // a late event the browser had already queued
  es.emit('telemetry', {}, '200-0');
  es.refuse();
  assert.deepEqual(got, []);
  assert.equal(t.client.lastEventId, '100-0');
  assert.equal(t.http.callsTo(PROBE).length, 0);
});

test('an EventSource that refuses the URL: onError, stopped rejected', async () => {
  class Refusing {
    constructor() {
      throw new SyntaxError('bad URL');
    }
  }
  const t = setup({ EventSource: Refusing });
  t.http.on(SESSION, response(201, sessionBody(t.clock)));
  t.client.start();
  await flush();
  assert.equal(t.errors[0].message, 'bad URL');
  assert.deepEqual(last(t.states), { state: 'stopped', previous: 'connecting', reason: 'rejected', status: null, code: null });
});

test('across a reconnect of its own: resumes from the last id, delivers each event once, in order', async () => {
  const t = setup();
  const got = [];
  t.client.on('telemetry', (d) => got.push(d.n));
  const es = await connect(t, '100-0');
  es.emit('telemetry', { n: 1 }, '101-0');
  es.emit('telemetry', { n: 2 }, '102-0');
  t.http.on(PROBE, response(502));
  es.refuse();
  await flush();
  t.clock.advance(t.clock.nextIn());
  await flush();
  const next = FakeEventSource.last;
  assert.equal(next.query.get('last_event_id'), '102-0');
  next.open();
  next.emit('connected', {}, '102-0');
  next.emit('telemetry', { n: 2 }, '102-0'); // a server replaying one too many
  next.emit('telemetry', { n: 3 }, '103-0');
  next.drop(); // EventSource's own reconnect, with Last-Event-ID 103-0
  next.open();
  next.emit('telemetry', { n: 3 }, '103-0');
  next.emit('telemetry', { n: 4 }, '103-1');
  assert.deepEqual(got, [1, 2, 3, 4]);
  assert.equal(t.client.lastEventId, '103-1');
});

// ------------------------------------------------------------------ what the server tells

test('connected tells the heartbeat: the monitor waits 2 × the server\'s interval, not the option', async () => {
  const t = setup({ heartbeatMs: 15000 });
  t.http.on(SESSION, response(201, sessionBody(t.clock, 'S1')));
  t.client.start();
  await flush();
  const es = FakeEventSource.last;
  es.open();
  es.emit('connected', { connection_id: 'c1', retry_ms: 3100, heartbeat_ms: 1000 }, '5-0');
  t.clock.advance(1999);
  assert.equal(t.client.state, 'open');
  t.clock.advance(1);
  assert.equal(last(t.states).cause, 'heartbeat');
});

test('a shutdown reconnects within the retry connected told', async () => {
  const t = setup({ retryMs: 60000 });
  t.http.on(SESSION, response(201, sessionBody(t.clock, 'S1')));
  t.client.start();
  await flush();
  const es = FakeEventSource.last;
  es.open();
  es.emit('connected', { connection_id: 'c1', retry_ms: 2000, heartbeat_ms: 15000 }, '5-0');
  es.emit('shutdown', { time: 'x' }, '5-0');
  assert.deepEqual(last(t.states), { state: 'reconnecting', previous: 'open', cause: 'shutdown', attempt: 0, delayMs: 1000 });
});

test('lifetime: the end that follows is reported as planned, not as a network failure', async () => {
  const t = setup();
  const es = await connect(t, '7-0');
  es.emit('lifetime', { time: 'x' }, '7-0');
  es.drop();
  assert.equal(last(t.states).state, 'reconnecting');
  assert.equal(last(t.states).cause, 'lifetime');
  es.open();
  es.drop();
  assert.equal(last(t.states).cause, 'network');
});
