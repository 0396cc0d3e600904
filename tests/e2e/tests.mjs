// The dashboard's end-to-end tests: Chromium against the real stack
// (stack.py: lighttpd serving the dashboard as make run does, two fcgi_sse
// processes, Redis). Each test gets a fresh browser context (no cookies)
// and the shared stack; they run in this order. Every wait is on a
// condition of the page or the stack, never a fixed time.

import { Api, check, waitFor } from './lib.mjs';

export const TESTS = [];
const test = (name, fn) => TESTS.push({ name, fn });

const PASSWORD = 'demo-password';

// ---------------------------------------------------------------- page helpers

async function openDashboard(page, stack) {
  const res = await page.goto(stack.url);
  check(res.ok(), `GET / answered ${res.status()}`);
  check(new URL(page.url()).pathname === '/dashboard/', `/ leads to ${page.url()}`);
  await page.locator('html[data-ready="true"]').waitFor(); // app.js ran
}

async function logIn(page, username) {
  await page.getByLabel('Tenant').fill('demo');
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#connection[data-state="open"]').waitFor();
  await page.locator('#connection:not([data-connection-id=""])').waitFor();
  await page.locator('#devices:not([aria-busy])').waitFor({ state: 'attached' }); // devices loaded
}

const connection = (page) =>
  page.evaluate(() => {
    const el = document.getElementById('connection');
    return { state: el.dataset.state, reason: el.dataset.reason, id: el.dataset.connectionId, text: el.textContent.trim() };
  });

// What a device's card shows: its counters, the point ids in its table and
// the points drawn on its chart.
const card = (page, deviceId) =>
  page.evaluate((id) => {
    const li = document.querySelector(`li.device[data-device-id="${id}"]`);
    if (!li) return null;
    return {
      name: li.querySelector('.device-name').textContent,
      status: li.dataset.status,
      points: Number(li.dataset.points),
      repeats: Number(li.dataset.repeats),
      rows: [...li.querySelectorAll('tbody tr')].map((tr) => tr.dataset.pointId),
      plotted: Number(li.querySelector('svg.chart').dataset.points),
      count: li.querySelector('.point-count').textContent,
      latest: li.querySelector('.latest').textContent,
    };
  }, deviceId);

// Waits until the card shows exactly these points (table, counter, chart).
async function waitForPoints(page, deviceId, ids, timeout = 15_000) {
  try {
    await page.waitForFunction(
      ([id, want]) => {
        const li = document.querySelector(`li.device[data-device-id="${id}"]`);
        if (!li) return false;
        const rows = [...li.querySelectorAll('tbody tr')].map((tr) => tr.dataset.pointId);
        return (
          Number(li.dataset.points) === want.length &&
          Number(li.querySelector('svg.chart').dataset.points) === want.length &&
          rows.length === want.length &&
          want.every((p) => rows.includes(p))
        );
      },
      [deviceId, ids],
      { timeout },
    );
  } catch (err) {
    const got = await card(page, deviceId);
    throw new Error(`the card of ${deviceId} does not show the ${ids.length} points ${JSON.stringify(ids)}: ` +
      `it shows ${JSON.stringify(got)} (${err.message.split('\n')[0]})`);
  }
}

// The backend ("a" or "b") whose log has the request id (a stream's
// connection id is the request id of its GET).
async function backendOf(stack, requestId) {
  const found = await waitFor(async () => {
    const w = await stack.where(requestId);
    return w.length === 1 && w;
  }, `one backend log names request ${requestId}`);
  return found[0];
}

const logTexts = (page) => page.locator('#log .log-text').allTextContents();

async function noErrorsLogged(page) {
  const errors = await page.locator('#log .log-error .log-text').allTextContents();
  check(errors.length === 0, `the page logged errors: ${JSON.stringify(errors)}`);
}

// ---------------------------------------------------------------- tests

test('front server: dashboard and client as static files, /api and /metrics to fcgi_sse', async ({ stack }) => {
  const get = (p) => fetch(new URL(p, stack.url), { redirect: 'manual' });
  let r = await get('/');
  check(r.status === 302 && r.headers.get('location').endsWith('/dashboard/'), `/ -> ${r.status} ${r.headers.get('location')}`);
  for (const [p, type] of [
    ['/dashboard/', 'text/html'],
    ['/dashboard/app.js', 'text/javascript'],
    ['/dashboard/style.css', 'text/css'],
    ['/dashboard/favicon.svg', 'image/svg+xml'],
    ['/clients/js/src/index.js', 'text/javascript'],
  ]) {
    r = await get(p);
    check(r.status === 200, `${p}: ${r.status}`);
    check(r.headers.get('content-type').startsWith(type), `${p}: ${r.headers.get('content-type')}`);
    check(/script-src 'self'/.test(r.headers.get('content-security-policy') || ''), `${p}: CSP`);
    check(r.headers.get('x-content-type-options') === 'nosniff', `${p}: nosniff`);
  }
  r = await get('/api/v2/health');
  check(r.status === 200 && (await r.json()).status === 'ok', `/api/v2/health: ${r.status}`);
  check(!r.headers.get('content-security-policy'), 'API answers carry no dashboard headers');
  r = await get('/api/v2/nope');
  check(r.status === 404 && (await r.json()).code === 'route.not_found', '/api/v2/nope is fcgi_sse\'s 404');
  r = await get('/metrics');
  check(r.status === 200 && (await r.text()).includes('fcgi_sse_streams_open'), `/metrics: ${r.status}`);
  r = await get('/nope.html');
  check(r.status === 404 && !(r.headers.get('content-type') || '').includes('problem'), '/nope.html is lighttpd\'s 404');
});

test('log in, see the devices and live telemetry on the chart', async ({ stack, page }) => {
  const op = await new Api(stack.url).login('operator');
  const boiler = await op.createDevice('E2E boiler', { metadata: { room: 'B2' } });

  await openDashboard(page, stack);
  await logIn(page, 'viewer');
  const c = await connection(page);
  check(c.text.includes('live'), `indicator says ${JSON.stringify(c.text)}`);
  await page.locator(`li.device[data-device-id="${boiler.id}"] .status`).getByText('online').waitFor();
  check((await page.locator('#who-text').textContent()).includes('viewer'), 'who is logged in');

  // points a second apart, the last one now
  const ids = [];
  const temps = [20.5, 21, 21.75, 22.25, 21.5];
  for (const [i, temp] of temps.entries()) {
    const ts = new Date(Date.now() - (temps.length - 1 - i) * 1000).toISOString();
    const r = await op.expect(202, 'POST', `/devices/${boiler.id}/telemetry`, { ts, metrics: { temp, hum: 40 + temp } });
    ids.push(r.id);
  }
  await waitForPoints(page, boiler.id, ids);
  let got = await card(page, boiler.id);
  check(got.count === '5 points', `counter says ${got.count}`);
  check(got.latest.includes('temp 21.5'), `latest values: ${got.latest}`);
  check(got.repeats === 0, 'no repeats');
  const chart = page.locator(`li.device[data-device-id="${boiler.id}"] svg.chart`);
  const label = await chart.getAttribute('aria-label');
  check(/^E2E boiler, temp: 5 points.*latest 21\.5, lowest 20\.5, highest 22\.25$/.test(label), `chart label: ${label}`);
  await page.locator(`li.device[data-device-id="${boiler.id}"]`).getByLabel('Metric').selectOption('hum');
  await page.waitForFunction((el) => /, hum: 5 points.*latest 61\.5/.test(el.getAttribute('aria-label')), await chart.elementHandle());

  // a device made now appears, and its status follows its changes
  const pump = await op.createDevice('E2E pump');
  await page.locator(`li.device[data-device-id="${pump.id}"]`).getByText('E2E pump').waitFor();
  await op.expect(200, 'PUT', `/devices/${pump.id}/status`, { status: 'maintenance' });
  await page.locator(`li.device[data-device-id="${pump.id}"][data-status="maintenance"]`).waitFor();
  await op.expect(204, 'DELETE', `/devices/${pump.id}`);
  await page.locator(`li.device[data-device-id="${pump.id}"]`).waitFor({ state: 'detached' });
  const log = await logTexts(page);
  for (const want of ['E2E pump: added, online', 'E2E pump: maintenance', 'E2E pump: deleted']) {
    check(log.some((l) => l.startsWith(want)), `log lacks ${want}: ${JSON.stringify(log)}`);
  }

  // a reload of the page: a new login, the points come back from the API
  await page.reload();
  await page.locator('html[data-ready="true"]').waitFor();
  await logIn(page, 'viewer');
  await waitForPoints(page, boiler.id, ids);
  got = await card(page, boiler.id);
  check(got.status === 'online' && got.name === 'E2E boiler', `after the reload: ${JSON.stringify(got)}`);
  await noErrorsLogged(page);
});

test('SIGKILL of the process holding the stream: the page resumes on the other, missing nothing', async ({ stack, page, note }) => {
  const op = await new Api(stack.url).login('operator');
  const dev = await op.createDevice('E2E failover');
  await openDashboard(page, stack);
  await logIn(page, 'viewer');

  const before = (await connection(page)).id;
  const holder = await backendOf(stack, before); // the stream's connection id is its request id
  const other = holder === 'a' ? 'b' : 'a';

  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(await op.point(dev.id, { seq: i }));
  await waitForPoints(page, dev.id, ids);
  // lighttpd spreads the work: with the stream on one process (one
  // connection), requests go to the other (least connections)
  const servedBy = await backendOf(stack, op.lastRequestId);
  check(servedBy === other, `the last point went through ${servedBy}, not the other process ${other}`);

  await stack.kill(holder);
  try {
    await page.locator('#connection[data-state="reconnecting"]').waitFor();
    for (let i = 3; i < 6; i++) ids.push(await op.point(dev.id, { seq: i })); // to the other process
    const during = await connection(page);
    check(during.state !== 'open', `the page reconnected before the points "during" were posted (${during.state})`);

    await page.locator('#connection[data-state="open"]').waitFor();
    const after = await waitFor(async () => {
      const c = await connection(page);
      return c.id && c.id !== before && c;
    }, 'a new connection id');
    const now = await backendOf(stack, after.id);
    check(now === other, `the stream came back on ${now}, want ${other}`);
    for (let i = 6; i < 9; i++) ids.push(await op.point(dev.id, { seq: i }));

    await waitForPoints(page, dev.id, ids);
    const got = await card(page, dev.id);
    check(new Set(got.rows).size === 9 && got.rows.length === 9, `rows: ${JSON.stringify(got.rows)}`);
    check(got.repeats === 0, `the page was handed ${got.repeats} repeats`);
    const log = await logTexts(page);
    check(log.some((l) => l.startsWith('connection lost')), `the log tells the loss: ${JSON.stringify(log)}`);
    await noErrorsLogged(page);
    note(`stream on ${holder}, then on ${other}; points before the kill posted through ${servedBy}`);
  } finally {
    await stack.start(holder); // for the tests after this one
  }
});

test('an admin revokes the user\'s sessions: the stream ends and the page says so', async ({ stack, page }) => {
  await openDashboard(page, stack);
  await logIn(page, 'viewer');
  const admin = await new Api(stack.url).login('admin');
  const users = await admin.expect(200, 'GET', '/users');
  const viewer = users.items.find((u) => u.username === 'viewer');
  await admin.expect(204, 'DELETE', `/users/${viewer.id}/sessions`);

  await page.locator('#connection[data-state="stopped"][data-reason="revoked"]').waitFor();
  const c = await connection(page);
  check(c.text.includes('session revoked'), `indicator says ${JSON.stringify(c.text)}`);
  await page.getByRole('alert').filter({ hasText: 'Your session was revoked' }).waitFor();
  await page.locator('#login-form').waitFor({ state: 'visible' });
  check(await page.locator('#dashboard-view').isHidden(), 'the dashboard is put away');

  // logging in again works: a new session, a new stream
  await logIn(page, 'viewer');
  check(await page.locator('#notice').isHidden(), 'the notice goes with a new login');
});

test('log out: the page ends its stream, then the login', async ({ stack, page }) => {
  await openDashboard(page, stack);
  await logIn(page, 'operator');
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v2/auth/logout')),
    page.getByRole('button', { name: 'Log out' }).click(),
  ]);
  check(res.status() === 204, `logout answered ${res.status()}`);
  await page.getByRole('alert').filter({ hasText: 'You are logged out.' }).waitFor();
  await page.locator('#login-form').waitFor({ state: 'visible' });
  const c = await connection(page);
  check(c.state === 'stopped' && c.reason === 'requested', `indicator: ${JSON.stringify(c)}`);
});
