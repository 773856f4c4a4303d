// The dashboard (GET /) and its event stream (GET /events), end to end: the
// real server on --port 0, Debian's headless Chromium driven by
// playwright-core. Every wait polls with a deadline; none sleeps a fixed time.
//
//   node dashboard.test.mjs OUTDIR      (TURNSTILE_BIN: the server binary)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.TURNSTILE_BIN;
const OUT = process.argv[2];
const DEADLINE_MS = 20000; // for any one wait; the whole run takes seconds
const LAUNCH = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-quic'],
};
const LAPTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

const live = new Set(); // servers to kill if a case fails half-way

function withDeadline(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function until(what, fn, ms = DEADLINE_MS) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

// ---- the server ----

async function startServer(...args) {
  const proc = spawn(BIN, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const srv = { proc, stderr: '' };
  live.add(srv);
  proc.stderr.on('data', (d) => { srv.stderr += d; });
  srv.exited = new Promise((resolve) => proc.on('exit', (code, sig) => {
    live.delete(srv);
    resolve(sig ?? code);
  }));
  let out = '';
  srv.base = await withDeadline(new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /^turnstile listening on (http:\/\/\S+)$/m.exec(out);
      if (m) resolve(m[1]);
    });
    proc.on('error', reject);
    proc.on('exit', () => reject(new Error(`server exited early: ${srv.stderr}`)));
  }), 10000, 'the listening line');
  return srv;
}

async function stopServer(srv) {
  srv.proc.kill('SIGTERM');
  const status = await withDeadline(srv.exited, 10000, 'server exit after SIGTERM');
  assert.equal(status, 0, `server exit status ${status}; stderr: ${srv.stderr}`);
}

// A fresh connection per request (no keep-alive agent), so that
// connections.active counts only the /stats request itself.
function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, resolve).on('error', reject);
  });
}

async function getBody(url) {
  const res = await get(url);
  let body = '';
  for await (const chunk of res) body += chunk;
  return { status: res.statusCode, body };
}

const stats = async (base) => JSON.parse((await getBody(`${base}/stats`)).body);

// Splits a text/event-stream into its events as they arrive.
function readEvents(res) {
  const events = { list: [] };
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      events.list.push(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
  });
  events.ended = new Promise((resolve) => res.on('close', resolve));
  return events;
}

const eventData = (e) => JSON.parse(e.split('\n').find((l) => l.startsWith('data: ')).slice(6));

// ---- the browser ----

let browserPromise;
const browser = () => (browserPromise ??= chromium.launch(LAUNCH));

// Opens the dashboard, recording every request and error the page makes.
// editStats(doc) changes every /stats document the page fetches.
async function openPage(base, { noEventSource = false, editStats = null } = {}) {
  const context = await (await browser()).newContext({ viewport: LAPTOP });
  if (noEventSource) await context.addInitScript(() => { delete window.EventSource; });
  if (editStats) {
    await context.route(`${base}/stats`, async (route) => {
      const doc = await (await route.fetch()).json();
      editStats(doc);
      await route.fulfill({ json: doc });
    });
  }
  const page = await context.newPage();
  const seen = { urls: [], paths: [], errors: [] };
  page.on('request', (r) => {
    seen.urls.push(r.url());
    seen.paths.push(new URL(r.url()).pathname);
  });
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') seen.errors.push(m.text()); });
  await page.goto(`${base}/`);
  return { context, page, seen };
}

// No errors, and no request anywhere but the server itself.
function checkSeen(seen, base) {
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.urls.filter((u) => !u.startsWith(`${base}/`)), []);
}

const waitPage = (page, fn, arg) => page.waitForFunction(fn, arg, { timeout: DEADLINE_MS, polling: 50 });
const textOf = (page, sel) => page.textContent(sel);
const keyed = (key) => `[data-key="${key}"]`;
// A /stats field's row label: the <dt> before its <dd>.
const labelOf = (page, key) => page.$eval(keyed(key), (e) => e.previousElementSibling.textContent);

// The dotted keys of every number in a /stats group, histograms' included.
function numericKeys(obj, path) {
  return Object.entries(obj).flatMap(([k, v]) => {
    if (typeof v === 'number') return [`${path}.${k}`];
    return v && typeof v === 'object' && !Array.isArray(v) ? numericKeys(v, `${path}.${k}`) : [];
  });
}

// ---- the cases ----

// GET /events on the wire: headers, a retry line, events a few times a
// second, and a subscriber that leaves (or a server that stops) ends it.
async function eventsStream() {
  const srv = await startServer('--delay-ms', '5');
  const baseline = (await stats(srv.base)).connections.active;
  const res = await get(`${srv.base}/events`);
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/event-stream');
  assert.equal(res.headers['cache-control'], 'no-store');
  const events = readEvents(res);
  await until('two events', () => events.list.length >= 2, 5000);
  assert.match(events.list[0], /^retry: \d+\ndata: \{/);
  const [a, b] = events.list.slice(0, 2).map(eventData);
  assert.ok(b.uptime_s > a.uptime_s, 'events carry fresh documents');
  assert.ok(Array.isArray(a.grants.recent) && 'waiters' in a.lock, 'the /stats document and grants');
  assert.equal((await stats(srv.base)).connections.active, baseline + 1);

  res.destroy(); // the client leaves
  await until('connections.active back at baseline',
    async () => (await stats(srv.base)).connections.active === baseline, 5000);

  const stays = readEvents(await get(`${srv.base}/events`));
  await until('an event', () => stays.list.length >= 1, 5000);
  await stopServer(srv); // a subscriber must not hold up a clean stop
  await withDeadline(stays.ended, 5000, 'the stream ending when the server stops');
}

// The page at laptop width: 20 requests from the control fill the queue
// and drain in order; then the same page at phone width. A failure leaves
// dashboard-failure.png beside the screenshots.
async function dashboard() {
  const srv = await startServer('--delay-ms', '50');
  const { context, page, seen } = await openPage(srv.base);
  try {
    await sendTwenty(page, seen, srv.base);
  } catch (err) { // show what the page showed when it went wrong
    await page.screenshot({ path: path.join(OUT, 'dashboard-failure.png'), fullPage: true });
    throw err;
  }
  await stopServer(srv); // with the page still subscribed
  await context.close();
}

async function sendTwenty(page, seen, base) {
  await waitPage(page, () => document.getElementById('status').textContent === 'live');
  await page.fill('#send-n', '20');
  await page.click('#send-btn');
  await waitPage(page, () => {
    const t = (id) => document.getElementById(id).textContent;
    return t('counter') === '20'
      && document.querySelector('[data-key="lock.waiters"]').textContent === '0'
      && document.querySelectorAll('#replies li:not(.pending)').length === 20
      && document.querySelectorAll('#grants li').length === 20;
  });
  assert.deepEqual(await page.$$eval('#grants li', (els) => els.map((e) => +e.dataset.n)), range(20),
    'grants N 1..20 in order');
  assert.deepEqual(await page.$$eval('#replies li', (els) => els.map((e) => +e.textContent)), range(20),
    'replies came back in N order');
  assert.ok(+await textOf(page, keyed('lock.max_waiters')) >= 2, 'the queue filled');
  await statsShown(page, base);
  const times = '[data-key^="lock.wait_us."], [data-key^="lock.hold_us."]';
  const cells = await page.$$eval(times, (els) => els.map((e) => [e.dataset.key, e.textContent]));
  assert.equal(cells.length, 10, 'p50, p90, p99, max and count of wait and hold');
  for (const [key, cell] of cells)
    assert.match(cell, key.endsWith('.count') ? /^20$/ : /^\d+(\.\d+)? (µs|ms|s)$/, `${key} has its unit`);
  assert.match(await textOf(page, '#rps'), /^\d+\.\d$/);
  await page.screenshot({ path: path.join(OUT, 'dashboard-laptop.png'), fullPage: true });

  await page.setViewportSize(PHONE);
  await waitPage(page, () => {
    const [a, b] = document.querySelectorAll('.card');
    return a.getBoundingClientRect().left === b.getBoundingClientRect().left; // one column
  });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth),
    'nothing wider than a phone');
  await page.screenshot({ path: path.join(OUT, 'dashboard-phone.png'), fullPage: true });
  console.log(`screenshots: ${path.join(OUT, 'dashboard-laptop.png')} ${path.join(OUT, 'dashboard-phone.png')}`);

  checkSeen(seen, base);
  assert.ok(seen.paths.includes('/events') && !seen.paths.includes('/stats'), 'live through SSE');
}

// Every number of the groups the page shows is on it, read from the
// document (none from a list kept in the page): the lock's with its value,
// which no longer moves once the queue has drained, and labelled by its key.
async function statsShown(page, base) {
  const doc = await stats(base);
  for (const key of ['lock', 'requests', 'connections'].flatMap((g) => numericKeys(doc[g], g)))
    assert.ok(await page.$(keyed(key)), `${key} is on the page`);
  for (const key of numericKeys(doc.lock, 'lock').filter((k) => !/_us\./.test(k)))
    assert.equal(await textOf(page, keyed(key)), String(key.split('.').reduce((o, k) => o[k], doc)), key);
  assert.equal(await labelOf(page, 'lock.max_waiters'), 'max waiters');
  assert.equal(await labelOf(page, 'connections.closed.bad_request'), 'bad request');
}

// Without EventSource the page polls /stats and still shows what happens,
// including a counter it has never heard of (the server's table grew).
async function pollingFallback() {
  const srv = await startServer('--delay-ms', '5');
  const { context, page, seen } = await openPage(srv.base, {
    noEventSource: true,
    editStats: (doc) => { doc.lock.brand_new_total = 7; },
  });
  await waitPage(page, () => document.getElementById('status').textContent === 'polling /stats');
  assert.equal((await getBody(`${srv.base}/access`)).body, 'Resource accessed 1 times.');
  await waitPage(page, () => document.getElementById('counter').textContent === '1'
    && document.querySelectorAll('#grants li').length === 1);
  assert.ok(await page.$(keyed('lock.brand_new_total')), 'a field the page never heard of is shown');
  assert.equal(await textOf(page, keyed('lock.brand_new_total')), '7');
  assert.equal(await labelOf(page, 'lock.brand_new_total'), 'brand new total');
  checkSeen(seen, srv.base);
  assert.ok(seen.paths.includes('/stats') && !seen.paths.includes('/events'), 'polled /stats');
  await context.close();
  await stopServer(srv);
}

const cases = [['events stream', eventsStream], ['dashboard', dashboard],
  ['polling fallback', pollingFallback]];
let passed = 0, failed = 0;
for (const [name, run] of cases) {
  const started = Date.now();
  try {
    await run();
    passed++;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err.stack}`);
  }
  for (const srv of live) srv.proc.kill('SIGKILL');
}
if (browserPromise) await (await browserPromise.catch(() => null))?.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
