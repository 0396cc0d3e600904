// Runs tests.mjs in Debian's Chromium (playwright-core, no browser of its
// own) against one stack; prints PASS or FAIL per test and "N passed, N
// failed". A failing test leaves a screenshot and the page's console in
// the artifacts directory it prints, and the stack's files (logs) are kept.
//   node tests/e2e/run.mjs [--binary build/fcgi_sse] [-k NAME]
// (tests/e2e/run.sh installs playwright-core first.)

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { ROOT, startStack } from './lib.mjs';
import { TESTS } from './tests.mjs';

const { values: args } = parseArgs({
  options: {
    binary: { type: 'string', default: path.join(ROOT, 'build', 'fcgi_sse') },
    k: { type: 'string', default: '' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    artifacts: { type: 'string', default: process.env.E2E_ARTIFACTS || path.join(ROOT, 'build', 'e2e') },
  },
});

const TEST_TIMEOUT_MS = 45_000; // a test that hangs fails; each wait has its own, shorter, bound
const WAIT_TIMEOUT_MS = 15_000;

const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
const secs = (ms) => `${(ms / 1000).toFixed(2)}s`;

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function main() {
  const t0 = Date.now();
  const runDir = path.join(args.artifacts, new Date().toISOString().replace(/[:.]/g, '-'));
  let stack;
  try {
    stack = await startStack(path.resolve(args.binary));
  } catch (err) {
    console.log(`FAIL e2e stack: ${err.message}`);
    console.log('0 passed, 1 failed');
    return 1;
  }
  const tStack = Date.now();
  let browser;
  let passed = 0;
  let failed = 0;
  try {
    browser = await chromium.launch({
      executablePath: args.chromium,
      headless: true,
      // as root: no sandbox; and nothing that reaches out of this machine
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking'],
    });
    console.log(`stack ${stack.url} (${secs(tStack - t0)}), ${browser.version()} (${secs(Date.now() - tStack)})`);

    for (const { name, fn } of TESTS) {
      if (!name.includes(args.k)) continue;
      const started = Date.now();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      context.setDefaultTimeout(WAIT_TIMEOUT_MS);
      const page = await context.newPage();
      const consoleLines = [];
      const pageErrors = [];
      page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => pageErrors.push(String(e.stack || e)));
      const notes = [];
      try {
        await withTimeout(fn({ stack, page, context, note: (s) => notes.push(s) }), TEST_TIMEOUT_MS, 'the test');
        // a script error or a refused load (CSP, MIME type) is a failure
        const refused = consoleLines.filter((l) => /Content Security Policy|MIME type|Failed to load module/i.test(l));
        if (pageErrors.length || refused.length) {
          throw new Error(`the page reported errors:\n  ${[...pageErrors, ...refused].join('\n  ')}`);
        }
        passed++;
        console.log(`PASS ${name} (${secs(Date.now() - started)})${notes.length ? ` [${notes.join('; ')}]` : ''}`);
      } catch (err) {
        failed++;
        console.log(`FAIL ${name} (${secs(Date.now() - started)})\n  ${String(err.stack || err).split('\n').slice(0, 6).join('\n  ')}`);
        mkdirSync(runDir, { recursive: true });
        const base = path.join(runDir, slug(name));
        try {
          await page.screenshot({ path: `${base}.png`, fullPage: true });
          console.log(`  screenshot: ${base}.png`);
        } catch (e) {
          console.log(`  no screenshot: ${e.message}`);
        }
        writeFileSync(`${base}.console.txt`, [...consoleLines, ...pageErrors].join('\n') + '\n');
        console.log(`  page console: ${base}.console.txt`);
      } finally {
        await context.close();
      }
    }
  } catch (err) {
    failed++;
    console.log(`FAIL e2e run: ${err.stack || err}`);
  } finally {
    if (browser) await browser.close();
    const { exit, dir } = await stack.stop(failed > 0);
    for (const [name, status] of Object.entries(exit || {})) {
      if (status !== 0) {
        failed++;
        console.log(`FAIL fcgi_sse ${name} exit status ${status} on SIGTERM`);
      }
    }
    if (dir) console.log(`stack files kept in ${dir}`);
    if (failed) console.log(`artifacts: ${runDir}`);
  }
  console.log(`e2e: ${secs(Date.now() - t0)} in all`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
