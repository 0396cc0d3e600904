import assert from 'node:assert/strict';
import { test } from 'node:test';

import { classifyStatus, probeStream, requestSession, streamUrl } from '../src/http.js';
import { FakeClock, FakeFetch, response, sessionBody } from './fakes.js';

const clock = new FakeClock();

test('stream URL: session id, filters as comma lists, resume point, all encoded', () => {
  assert.equal(
    streamUrl('/api/v2', { sessionId: 'abc', events: [], topics: [], lastEventId: null }),
    '/api/v2/events/stream?session_id=abc',
  );
  const url = streamUrl('https://h.example/api/v2', {
    sessionId: 'abc_-1',
    events: ['telemetry', 'device.updated'],
    topics: ['device:42', 'task:7f3a'],
    lastEventId: '1795306000123-0',
  });
  const q = new URLSearchParams(url.split('?')[1]);
  assert.ok(url.startsWith('https://h.example/api/v2/events/stream?'));
  assert.deepEqual([...q.keys()], ['session_id', 'events', 'topics', 'last_event_id']);
  assert.equal(q.get('events'), 'telemetry,device.updated');
  assert.equal(q.get('topics'), 'device:42,task:7f3a');
  assert.equal(q.get('last_event_id'), '1795306000123-0');
});

test('status classes', () => {
  assert.equal(classifyStatus(204), 'finished');
  assert.equal(classifyStatus(401), 'unauthorized');
  for (const s of [0, 200, 408, 425, 429, 500, 502, 503, 504]) assert.equal(classifyStatus(s), 'retry', String(s));
  for (const s of [400, 403, 404, 405, 410, 413]) assert.equal(classifyStatus(s), 'rejected', String(s));
});

test('session request: POST with the bearer token and the cookie (credentials), no token in the URL', async () => {
  const f = new FakeFetch().on('POST /api/v2/events/session', response(201, sessionBody(clock, 'S1')));
  const r = await requestSession({ fetch: f.fetch, baseUrl: '/api/v2', token: 'T0K', credentials: 'same-origin', now: clock.now });
  assert.equal(r.status, 201);
  assert.equal(r.session.id, 'S1');
  assert.equal(r.session.singleUse, false);
  assert.equal(r.session.opened, false);
  assert.equal(r.session.reconnectUntil, clock.now() + 43200 * 1000);
  const [call] = f.calls;
  assert.equal(call.url, '/api/v2/events/session');
  assert.equal(call.init.method, 'POST');
  assert.equal(call.init.headers.Authorization, 'Bearer T0K');
  assert.equal(call.init.credentials, 'same-origin');
  assert.equal(call.init.body, undefined); // fetch sends Content-Length: 0 (lighttpd needs it)
  assert.ok(!call.url.includes('T0K'));
});

test('session request: a problem answer gives its code and Retry-After', async () => {
  const f = new FakeFetch()
    .on('POST /api/v2/events/session', response(401, { code: 'auth.token_expired', status: 401 }))
    .on('POST /api/v2/events/session', response(429, { code: 'rate.limited' }, { 'Retry-After': '5' }))
    .on('POST /api/v2/events/session', response(502, undefined));
  const o = { fetch: f.fetch, baseUrl: '/api/v2', token: 't', credentials: 'include', now: clock.now };
  assert.deepEqual(await requestSession(o), { status: 401, code: 'auth.token_expired', retryAfterMs: 0 });
  assert.deepEqual(await requestSession(o), { status: 429, code: 'rate.limited', retryAfterMs: 5000 });
  assert.deepEqual(await requestSession(o), { status: 502, code: null, retryAfterMs: 0 }); // a proxy's HTML page
});

test('session request: no answer, or an unusable 201, is status 0', async () => {
  const f = new FakeFetch()
    .on('POST /api/v2/events/session', new TypeError('Failed to fetch'))
    .on('POST /api/v2/events/session', response(201, { nope: true }))
    .on('POST /api/v2/events/session', response(201, undefined));
  const o = { fetch: f.fetch, baseUrl: '/api/v2', token: 't', credentials: 'include', now: clock.now };
  for (let i = 0; i < 3; i++) assert.equal((await requestSession(o)).status, 0);
});

test('session answer without reconnect_until or single_use: treated as single use, never reused', async () => {
  const f = new FakeFetch().on('POST /api/v2/events/session', response(201, { session_id: 'S', expires_at: 'x' }));
  const r = await requestSession({ fetch: f.fetch, baseUrl: '/api/v2', token: 't', credentials: 'include', now: clock.now });
  assert.equal(r.session.singleUse, true);
  assert.ok(Number.isNaN(r.session.reconnectUntil));
});

test('probe: HEAD of the stream URL with Last-Event-ID', async () => {
  const url = '/api/v2/events/stream?session_id=S&topics=task%3A1';
  const f = new FakeFetch()
    .on('HEAD /api/v2/events/stream', response(204))
    .on('HEAD /api/v2/events/stream', response(503, undefined, { 'Retry-After': '5' }))
    .on('HEAD /api/v2/events/stream', new TypeError('offline'))
    .on('HEAD /api/v2/events/stream', response(200));
  const o = { fetch: f.fetch, url, lastEventId: '7-0', credentials: 'same-origin', now: clock.now };
  assert.deepEqual(await probeStream(o), { status: 204, retryAfterMs: 0 });
  assert.deepEqual(await probeStream(o), { status: 503, retryAfterMs: 5000 });
  assert.deepEqual(await probeStream(o), { status: 0, retryAfterMs: 0 });
  assert.equal(f.calls[0].url, url);
  assert.equal(f.calls[0].init.method, 'HEAD');
  assert.deepEqual(f.calls[0].init.headers, { 'Last-Event-ID': '7-0' });
  await probeStream({ ...o, lastEventId: null });
  assert.deepEqual(f.calls[3].init.headers, {});
});
