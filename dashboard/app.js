// The dashboard: log in, the tenant's devices with their status and a live
// chart of their telemetry, the stream's connection state and an event log.
//
// Login (POST /auth/login) gives the access token and sets the fingerprint
// cookie; StreamClient (clients/js) turns the token into a stream of the
// tenant's device and telemetry events. The devices are read once the
// stream has connected, so that every change after that read arrives on the
// stream, and again after a `reset` (events were lost).

import { StreamClient } from '../clients/js/src/index.js';
import { createApi } from './api.js';
import { createBoard } from './devices.js';

const STREAM_EVENTS = ['device.updated', 'device.deleted', 'telemetry'];
const LOG_ENTRIES = 200;
const DEVICE_PAGES = 10; // at most 10 × 200 devices
const RECENT_POINTS = 100;

const $ = (id) => document.getElementById(id);
const ui = {
  connection: $('connection'),
  connectionText: $('connection-text'),
  who: $('who'),
  whoText: $('who-text'),
  logout: $('logout'),
  notice: $('notice'),
  noticeText: $('notice-text'),
  noticeAction: $('notice-action'),
  loginView: $('login-view'),
  loginForm: $('login-form'),
  tenant: $('tenant'),
  username: $('username'),
  password: $('password'),
  loginError: $('login-error'),
  loginButton: $('login-button'),
  dashboard: $('dashboard-view'),
  devices: $('devices'),
  deviceCount: $('device-count'),
  devicesEmpty: $('devices-empty'),
  log: $('log'),
  logTelemetry: $('log-telemetry'),
  logClear: $('log-clear'),
};

// ---------------------------------------------------------------- texts

const CAUSES = {
  network: 'connection lost, reconnecting',
  lifetime: 'renewing the stream',
  refused: 'stream refused, checking why',
  heartbeat: 'no heartbeat from the server, reconnecting',
  shutdown: 'server restarting, reconnecting',
  session: 'server busy or unreachable, retrying',
  token: 'could not renew the login, retrying',
};

const REASONS = {
  requested: 'disconnected',
  revoked: 'session revoked',
  closed: 'stream closed by the server',
  no_content: 'stream finished by the server',
  unauthorized: 'not authorized',
  invalid_session: 'stream session refused',
  rejected: 'refused by the server',
  gave_up: 'gave up reconnecting',
};

const LOGIN_ERRORS = {
  'auth.invalid_credentials': 'Wrong tenant, user name or password.',
  'rate.limited': 'Too many attempts. Wait a minute and try again.',
  'server.busy': 'The server is busy. Try again in a moment.',
  'request.invalid_field': null, // the server's detail says which field
};

function describe(change) {
  switch (change.state) {
    case 'idle':
      return 'not connected';
    case 'connecting':
      return change.attempt ? `connecting (attempt ${change.attempt + 1})…` : 'connecting…';
    case 'open':
      return 'live';
    case 'reconnecting': {
      const what = CAUSES[change.cause] || `reconnecting (${change.cause})`;
      return change.delayMs ? `${what} in ${Math.max(1, Math.round(change.delayMs / 1000))} s…` : `${what}…`;
    }
    case 'paused':
      return 'paused while the page is hidden';
    case 'stopped': {
      const why = REASONS[change.reason] || change.reason;
      const detail = [change.status, change.code].filter(Boolean).join(' ');
      return `stopped: ${why}${detail ? ` (${detail})` : ''}`;
    }
    default:
      return change.state;
  }
}

// ---------------------------------------------------------------- the log

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function log(kind, text) {
  const li = document.createElement('li');
  li.className = `log-entry log-${kind}`;
  li.dataset.kind = kind;
  const time = document.createElement('time');
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = clock.format(now);
  const tag = document.createElement('span');
  tag.className = 'log-kind';
  tag.textContent = kind;
  const body = document.createElement('span');
  body.className = 'log-text';
  body.textContent = text;
  li.append(time, ' ', tag, ' ', body);
  ui.log.prepend(li);
  while (ui.log.children.length > LOG_ENTRIES) ui.log.lastElementChild.remove();
}

// ---------------------------------------------------------------- views

function showNotice(text, action) {
  ui.noticeText.textContent = text;
  ui.noticeAction.hidden = !action;
  if (action) {
    ui.noticeAction.textContent = action.label;
    ui.noticeAction.onclick = () => {
      hideNotice();
      action.run();
    };
  }
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
  ui.noticeText.textContent = '';
}

function showLogin() {
  ui.dashboard.hidden = true;
  ui.who.hidden = true;
  ui.loginView.hidden = false;
  ui.loginButton.disabled = false;
  ui.password.value = '';
  (ui.username.value ? ui.password : ui.username).focus();
}

function showDashboard(user) {
  ui.loginView.hidden = true;
  ui.dashboard.hidden = false;
  ui.who.hidden = false;
  ui.whoText.textContent = `${user.username} (${user.role}) · ${user.tenant.name}`;
}

function setConnection(change) {
  ui.connection.dataset.state = change.state;
  ui.connection.dataset.reason = change.state === 'stopped' ? change.reason : (change.cause ?? '');
  ui.connectionText.textContent = describe(change);
}

function updateCount() {
  const n = board.size;
  ui.deviceCount.textContent = `${n} device${n === 1 ? '' : 's'}`;
  ui.devicesEmpty.hidden = n > 0 || ui.devices.getAttribute('aria-busy') === 'true';
}

// ---------------------------------------------------------------- state

const board = createBoard({ list: ui.devices, onUnknown: (id) => deviceUnknown(id) });
const api = createApi({ onSessionEnded: (err) => sessionEnded(`Your login is no longer valid (${err.code}).`) });

let stream = null;
let login = 0; // bumped per login: late answers of an earlier one are dropped
let loading = null; // the running load of devices, if any
let unknown = new Set(); // devices seen in telemetry while a load ran

function fetchDevice(id, gen) {
  api.get(`/devices/${encodeURIComponent(id)}`).then(
    (device) => {
      if (gen === login && board.upsert(device)) updateCount();
    },
    (err) => {
      if (gen !== login) return;
      if (err.status === 404) board.remove(id);
      else log('error', `device ${id}: ${err.message}`);
      updateCount();
    },
  );
}

function deviceUnknown(id) {
  if (loading) unknown.add(id);
  else fetchDevice(id, login);
}

// a few requests at a time
async function eachLimited(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// The devices (every page) and each one's recent telemetry.
async function loadDevices(gen) {
  ui.devices.setAttribute('aria-busy', 'true');
  try {
    const items = [];
    let cursor = null;
    for (let page = 0; page < DEVICE_PAGES; page++) {
      const body = await api.get(`/devices?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      if (gen !== login) return;
      items.push(...body.items);
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    for (const device of items) board.upsert(device);
    updateCount();
    await eachLimited(items, 4, async (device) => {
      const body = await api.get(`/telemetry/recent?device_id=${encodeURIComponent(device.id)}&limit=${RECENT_POINTS}`);
      if (gen === login) board.addPoints(device.id, body.items);
    });
  } catch (err) {
    if (gen === login && err.status !== 401) log('error', `loading the devices: ${err.message}`);
  } finally {
    if (gen === login) {
      ui.devices.removeAttribute('aria-busy');
      updateCount();
    }
  }
}

function reload(gen) {
  const mine = loadDevices(gen).finally(() => {
    if (gen !== login || loading !== mine) return; // a later load (a reset) runs on
    loading = null;
    const ids = [...unknown];
    unknown = new Set();
    for (const id of ids) if (!board.known(id)) fetchDevice(id, gen);
  });
  loading = mine;
  return mine;
}

function startStream(gen) {
  let loaded = false;
  const client = new StreamClient({
    getToken: async ({ refresh }) => {
      if (!refresh) return api.token;
      try {
        return await api.refresh();
      } catch (err) {
        if (err.status === 401) return null; // the login is over: stopped, unauthorized
        throw err; // try again later
      }
    },
    events: STREAM_EVENTS,
    pauseWhenHidden: true,
    onReset: () => {
      log('reset', 'events were missed: reloading the devices');
      board.clear();
      return reload(gen);
    },
    onError: (err) => log('error', String(err?.message || err)),
  });

  client.onState((change) => {
    if (gen !== login) return;
    setConnection(change);
    if (change.state !== 'connecting') log('connection', describe(change));
    if (change.state !== 'stopped') return;
    if (!loaded && ['closed', 'no_content', 'rejected', 'invalid_session', 'gave_up'].includes(change.reason)) {
      loaded = true; // no live updates, but the devices as they are now
      reload(gen);
    }
    streamStopped(change, gen);
  });
  client.on('connected', ({ connection_id: id }) => {
    ui.connection.dataset.connectionId = id || '';
    if (!loaded) {
      loaded = true;
      reload(gen); // from now on every change arrives on the stream
    }
  });
  client.on('device.updated', (device) => {
    const fresh = !board.known(device.id);
    if (!board.upsert(device)) return;
    updateCount();
    log('device', `${device.name}: ${fresh ? 'added, ' : ''}${device.status?.state} (version ${device.version})`);
  });
  client.on('device.deleted', ({ id }) => {
    const name = board.name(id);
    if (board.remove(id)) log('device', `${name}: deleted`);
    updateCount();
  });
  client.on('telemetry', (point) => {
    const { repeats } = board.addPoints(point.device_id, [point], { streamed: true });
    if (repeats) log('telemetry', `dropped a repeat of point ${point.id}`);
    else if (ui.logTelemetry.checked) {
      const values = Object.entries(point.metrics || {}).map(([k, v]) => `${k} ${v}`).join(', ');
      log('telemetry', `${board.name(point.device_id)}: ${values}`);
    }
  });
  client.start();
  return client;
}

function streamStopped(change, gen) {
  switch (change.reason) {
    case 'requested':
      return;
    case 'revoked':
      return sessionEnded('Your session was revoked: you were logged out elsewhere or by an administrator. Log in again to continue.');
    case 'unauthorized':
      return sessionEnded(`Your login is no longer valid${change.code ? ` (${change.code})` : ''}. Log in again to continue.`);
    case 'invalid_session':
      return showNotice('The server refused the stream session: the fingerprint cookie did not come with it. ' +
        'Open the dashboard over HTTPS or from localhost.', { label: 'Try again', run: () => stream?.start() });
    default:
      if (gen === login) showNotice(`Live updates stopped: ${describe(change).replace(/^stopped: /, '')}.`,
        { label: 'Reconnect', run: () => stream?.start() });
  }
}

// The login is over (the stream was revoked, a request got 401): back to
// the login form, saying why; the header keeps the stream's last state.
function sessionEnded(message) {
  if (ui.dashboard.hidden) return;
  stream?.stop(); // (a no-op when the stream stopped by itself)
  stream = null;
  login++;
  api.forget();
  showNotice(message);
  showLogin();
}

async function startSession(user) {
  const gen = ++login;
  stream?.stop();
  board.clear();
  ui.log.replaceChildren();
  ui.connection.dataset.connectionId = '';
  updateCount();
  hideNotice();
  showDashboard(user);
  log('session', `logged in as ${user.username} (${user.role}) in tenant ${user.tenant.name}`);
  stream = startStream(gen);
  $('main').focus();
}

// ---------------------------------------------------------------- events

ui.loginForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  ui.loginError.textContent = '';
  const tenant = ui.tenant.value.trim();
  const username = ui.username.value.trim();
  const password = ui.password.value;
  const missing = [[tenant, ui.tenant], [username, ui.username], [password, ui.password]].find(([v]) => !v);
  if (missing) {
    ui.loginError.textContent = `Enter your ${missing[1].labels[0].textContent.toLowerCase()}.`;
    missing[1].focus();
    return;
  }
  ui.loginButton.disabled = true;
  ui.loginForm.setAttribute('aria-busy', 'true');
  try {
    const user = await api.login(tenant, username, password);
    await startSession(user);
  } catch (err) {
    const known = LOGIN_ERRORS[err.code];
    ui.loginError.textContent = known || err.message;
    ui.password.select();
  } finally {
    ui.loginButton.disabled = false;
    ui.loginForm.removeAttribute('aria-busy');
  }
});

ui.logout.addEventListener('click', async () => {
  stream?.stop(); // first: the logout would end it as `revoked`
  stream = null;
  login++;
  try {
    await api.logout();
    showNotice('You are logged out.');
  } catch (err) {
    showNotice(`Logged out here; the server did not confirm it (${err.message}).`);
  }
  showLogin();
});

ui.logClear.addEventListener('click', () => ui.log.replaceChildren());

setInterval(() => board.tick(), 5000);
document.documentElement.dataset.ready = 'true';
ui.username.focus();
