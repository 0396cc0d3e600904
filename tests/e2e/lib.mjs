// What the e2e tests stand on: the stack (stack.py, driven over its stdin
// and stdout), an API client of the tests' own (node's fetch, the
// fingerprint cookie carried by hand), and waits on conditions.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');

/** A failed check. */
export class CheckError extends Error {}

export function check(cond, message) {
  if (!cond) throw new CheckError(message);
}

/**
 * Starts stack.py and waits for its description.
 * @returns {Promise<Stack>}
 */
export async function startStack(binary) {
  const proc = spawn('python3', [path.join(HERE, 'stack.py'), '--binary', binary], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: proc.stdout });
  const queue = [];
  const waiting = [];
  lines.on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else queue.push(line);
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const next = (timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      if (queue.length) return resolve(JSON.parse(queue.shift()));
      const timer = setTimeout(() => reject(new Error('stack.py did not answer')), timeoutMs);
      waiting.push((line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      });
      exited.then(({ code, signal }) => reject(new Error(`stack.py exited (${code ?? signal})`)));
    });
  const info = await next();
  if (!info.ok) throw new Error(`the stack did not start: ${info.error}${info.dir ? ` (its files: ${info.dir})` : ''}`);
  return new Stack(proc, next, exited, info);
}

class Stack {
  constructor(proc, next, exited, info) {
    this.proc = proc;
    this._next = next;
    this.exited = exited;
    this.info = info;
    this.url = info.url;
    this.backends = info.backends;
  }

  async command(line) {
    this.proc.stdin.write(`${line}\n`);
    const answer = await this._next();
    if (!answer.ok) throw new Error(`stack.py ${line}: ${answer.error}`);
    return answer;
  }

  /** SIGKILL backend `name` ("a" or "b"). */
  kill(name) {
    return this.command(`kill ${name}`);
  }

  /** Starts backend `name` again. */
  start(name) {
    return this.command(`start ${name}`);
  }

  /** @returns {Promise<string[]>} the backends whose log has `text` */
  async where(text) {
    return (await this.command(`where ${text}`)).backends;
  }

  /** Stops everything; keep leaves the files. @returns {{exit, dir}} */
  async stop(keep) {
    this.proc.stdin.write(keep ? 'stop keep\n' : 'stop\n');
    const answer = await this._next(30_000);
    this.proc.stdin.end();
    await this.exited;
    return answer;
  }
}

/**
 * The tests' own API client: logs in as a user of tenant demo and keeps the
 * token and the fingerprint cookie, as a second browser would.
 */
export class Api {
  constructor(baseUrl) {
    this.base = new URL('/api/v2', baseUrl).href;
    this.token = null;
    this.cookie = null;
  }

  async login(username, password = 'demo-password', tenant = 'demo') {
    const res = await fetch(`${this.base}/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ tenant, username, password }),
    });
    if (res.status !== 200) throw new CheckError(`login as ${username}: ${res.status} ${await res.text()}`);
    // node 18's fetch has no getSetCookie(); its get() joins the cookies
    // with ", " (a cookie of ours holds no comma)
    const cookies = typeof res.headers.getSetCookie === 'function'
      ? res.headers.getSetCookie()
      : (res.headers.get('set-cookie') || '').split(/,\s*(?=[^;=\s]+=)/);
    const fgp = cookies.find((c) => c.startsWith('__Host-fgp='));
    check(fgp, 'login sets the fingerprint cookie');
    this.cookie = fgp.split(';')[0];
    const body = await res.json();
    this.token = body.access_token;
    this.user = body.user;
    return this;
  }

  /** @returns {Promise<{status: number, body: any, headers: Headers}>} */
  async send(method, p, body) {
    const headers = { Authorization: `Bearer ${this.token}`, Cookie: this.cookie };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(this.base + p, {
      method,
      headers,
      body: body === undefined ? (method === 'GET' || method === 'DELETE' ? undefined : '') : JSON.stringify(body),
    });
    this.lastRequestId = res.headers.get('x-request-id');
    const text = await res.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  async expect(status, method, p, body) {
    const r = await this.send(method, p, body);
    check(r.status === status, `${method} ${p}: ${r.status}, want ${status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  createDevice(name, extra = {}) {
    return this.expect(201, 'POST', '/devices', { name, status: 'online', ...extra });
  }

  /** One telemetry point; @returns its id */
  async point(deviceId, metrics) {
    return (await this.expect(202, 'POST', `/devices/${deviceId}/telemetry`, { metrics })).id;
  }
}

/** Polls fn until it returns something truthy; throws with message after timeoutMs. */
export async function waitFor(fn, message, timeoutMs = 15_000, stepMs = 25) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new CheckError(`timed out after ${timeoutMs} ms: ${message}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
