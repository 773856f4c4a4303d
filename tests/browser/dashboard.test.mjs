// The dashboard (GET /) and its event stream (GET /events), end to end: the
// real server on --port 0, Debian's headless Chromium driven by
// playwright-core; in cluster mode with a real etcd and 3 instances. Every
// wait polls with a deadline; none sleeps a fixed time.
//
//   node dashboard.test.mjs OUTDIR      (TURNSTILE_BIN: the server binary;
//                                        ETCD_BIN overrides etcd)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
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

// What each case leaves behind, gone at its end however it ended (cleanUp):
const live = new Set(); // the processes it started: servers, etcd
const temps = new Set(); // the directories it made: etcd's data

function withDeadline(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// what: the wait's name, or a function that says what went wrong at the end.
async function until(what, fn, ms = DEADLINE_MS) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end)
      throw new Error(`timed out after ${ms} ms: ${typeof what === 'function' ? what() : what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

// ---- the processes ----

// A child that the case's end kills if it is still running; its stderr kept
// for the failure messages. exited: its signal or status (or the error
// that kept it from starting).
function track(proc) {
  const child = { proc, stderr: '', done: false };
  live.add(child);
  proc.stderr.on('data', (d) => { child.stderr += d; });
  child.exited = new Promise((resolve) => {
    const end = (status) => {
      live.delete(child);
      child.done = true;
      resolve(status);
    };
    proc.on('exit', (code, sig) => end(sig ?? code));
    proc.on('error', (err) => {
      child.stderr += `${err.message}\n`;
      end(err.code);
    });
  });
  return child;
}

// Kills what is still running and removes the directories. The process's
// own exit does the same (synchronously), should the runner itself fail.
async function cleanUp() {
  const exits = [...live].map((child) => (child.proc.kill('SIGKILL'), child.exited));
  await withDeadline(Promise.all(exits), 10000, 'children gone after SIGKILL').catch(console.log);
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
  temps.clear();
}
process.on('exit', () => {
  for (const child of live) child.proc.kill('SIGKILL');
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});
// Through the exit above when stopped from outside (meson's timeout, ^C).
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1));

async function startServer(...args) {
  // The same test with N event loops: meson test --setup threads4.
  const threads = process.env.TURNSTILE_THREADS ? ['--threads', process.env.TURNSTILE_THREADS] : [];
  const proc = spawn(BIN, ['--port', '0', ...threads, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const srv = track(proc);
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

// ---- etcd ----

// Free ports of 127.0.0.1, all held open until each is picked, so that
// they differ from each other.
async function freePorts(n) {
  const held = await Promise.all(range(n).map(() => new Promise((resolve, reject) => {
    const s = net.createServer().on('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = held.map((s) => s.address().port);
  await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

const etcdHealthy = async (url) => {
  try {
    return (await getBody(`${url}/health`)).body.includes('"health":"true"');
  } catch {
    return false; // not listening yet
  }
};

// A single-node etcd with tests/common/etcd_proc.c's flags: its data in a
// temporary directory, and heartbeats and elections slower than etcd's
// defaults, so that a loaded machine does not make it lose its leader (its
// shortest lease is then 3 s). A port can be taken by someone else before
// etcd binds it: an etcd that exits is started again on fresh ones.
async function startEtcd() {
  for (let attempt = 1; ; attempt++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnstile-browser-'));
    temps.add(dir);
    const [client, peer] = await freePorts(2);
    const url = `http://127.0.0.1:${client}`, peerUrl = `http://127.0.0.1:${peer}`;
    const etcd = track(spawn(process.env.ETCD_BIN || 'etcd', ['--name', 'm0',
      '--data-dir', path.join(dir, 'data'), '--listen-client-urls', url,
      '--advertise-client-urls', url, '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `m0=${peerUrl}`,
      '--initial-cluster-token', dir, '--initial-cluster-state', 'new',
      '--heartbeat-interval', '200', '--election-timeout', '2000', '--logger', 'zap',
      '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] }));
    etcd.url = url;
    await until(() => `etcd healthy at ${url}; stderr: ${etcd.stderr}`,
      async () => etcd.done || await etcdHealthy(url), 30000);
    if (!etcd.done) return etcd;
    if (attempt === 3) throw new Error(`etcd exited ${attempt} times; stderr: ${etcd.stderr}`);
  }
}

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

const waitPage = (page, fn, arg, ms = DEADLINE_MS) =>
  page.waitForFunction(fn, arg, { timeout: ms, polling: 50 });
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

  await phoneWidth(page, 'dashboard-phone.png');
  console.log(`screenshots: ${path.join(OUT, 'dashboard-laptop.png')} ${path.join(OUT, 'dashboard-phone.png')}`);

  checkSeen(seen, base);
  assert.ok(seen.paths.includes('/events') && !seen.paths.includes('/stats'), 'live through SSE');
}

// The page at phone width: one column, nothing wider than the phone (a
// wide table scrolls in its card); its screenshot as name.
async function phoneWidth(page, name) {
  await page.setViewportSize(PHONE);
  await waitPage(page, () => {
    const [a, b] = document.querySelectorAll('.card');
    return a.getBoundingClientRect().left === b.getBoundingClientRect().left; // one column
  });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth),
    'nothing wider than a phone');
  await page.screenshot({ path: path.join(OUT, name), fullPage: true });
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

// ---- cluster mode ----

// A short lease, the shortest etcd grants with startEtcd()'s timing, so that
// a killed instance leaves the members within seconds; requests that hold
// the lock long enough for the page to see the holder and the queue.
const LEASE_MS = '3000';
const HOLD_MS = '400';
const NREQ = 9; // spread over the 3 instances: several seconds of a queue

const host = (srv) => new URL(srv.base).host; // how the page names a member

// Issue 23's card on one instance's page: a real etcd, 3 instances; the
// holder and the global queue while requests wait in the lock; then an
// instance killed, whose row goes when its lease expires.
async function clusterPage() {
  const etcd = await startEtcd();
  const flags = ['--etcd', etcd.url, '--cluster', 'browser',
    '--lease-ttl-ms', LEASE_MS, '--delay-ms', HOLD_MS];
  const srvs = await Promise.all(range(3).map(() => startServer(...flags)));
  await clusterReady(srvs);
  const { context, page, seen } = await openPage(srvs[0].base);
  try {
    await membersShown(page, srvs, etcd);
    await queueShown(page, srvs);
    await memberLeaves(page, srvs);
    await phoneWidth(page, 'cluster-phone.png');
  } catch (err) {
    await page.screenshot({ path: path.join(OUT, 'cluster-failure.png'), fullPage: true });
    throw err;
  }
  const shots = ['cluster-laptop.png', 'cluster-phone.png'].map((f) => path.join(OUT, f));
  console.log(`screenshots: ${shots.join(' ')}`);
  checkSeen(seen, srvs[0].base);
  await context.close();
  for (const srv of srvs.slice(0, 2)) await stopServer(srv);
}

// Every instance healthy and listing all 3 (members are polled every 2 s);
// each one's id, from its own /stats.
async function clusterReady(srvs) {
  let docs = [];
  const said = () => `3 healthy, listing 3 members: ${JSON.stringify(docs.map((d) => d.cluster))}`;
  await until(said, async () => {
    docs = await Promise.all(srvs.map((srv) => stats(srv.base)));
    return docs.every((d) => d.cluster.healthy && d.cluster.members.count === 3);
  }, 30000);
  docs.forEach((d, i) => { srvs[i].id = d.cluster.self; });
}

const memberRows = (page) => page.$$eval('#members tbody tr',
  (trs) => trs.map((tr) => ({ id: tr.dataset.id, cells: Array.from(tr.cells, (c) => c.textContent) })));

// The header names the instance serving the page; a row per member, each
// named by its address, this one marked; etcd's member with its leader
// and its db size against the quota.
async function membersShown(page, srvs, etcd) {
  await waitPage(page, () => document.querySelectorAll('#members tbody tr').length === 3
    && document.querySelectorAll('#etcd-rows tbody tr').length === 1);
  assert.equal(await textOf(page, '#served-by'), `served by ${host(srvs[0])} (${srvs[0].id})`);
  const rows = await memberRows(page);
  assert.deepEqual(rows.map((r) => r.id).sort(), srvs.map((srv) => srv.id).sort());
  for (const srv of srvs) {
    const name = rows.find((r) => r.id === srv.id).cells[0];
    assert.equal(name, host(srv) + (srv === srvs[0] ? ' (this page)' : ''), 'only self marked');
  }
  const etcdRow = await page.$eval('#etcd-rows tbody tr', (tr) => ({ cls: tr.className,
    cells: Array.from(tr.cells, (c) => c.textContent), bar: !!tr.querySelector('.bar'),
    title: tr.cells[2].title }));
  assert.equal(etcdRow.cells[0], `${new URL(etcd.url).host} (leader)`);
  assert.match(etcdRow.cells[1], /^[1-9]\d*$/, 'raft term');
  assert.match(etcdRow.cells[2], /^\d+ KiB$/, 'db size');
  assert.ok(etcdRow.bar && etcdRow.cls === '', 'a reachable member, its size against the quota');
  assert.match(etcdRow.title, /^in use \d+ KiB of a 2\.00 GiB quota$/);
}

// NREQ requests at once, spread over the instances: the page shows one
// holder highlighted and starred, and the waiters behind it by member
// (screenshot then); all are answered, each N once; then nobody holds it.
async function queueShown(page, srvs) {
  const replies = range(NREQ).map((i) => getBody(`${srvs[i % 3].base}/access`));
  const shown = await (await waitPage(page, () => {
    const held = document.querySelectorAll('#members tr.holder');
    const waiters = Array.from(document.querySelectorAll('#waiters li'), (li) => li.textContent);
    return held.length === 1 && waiters.length >= 2 && {
      holder: held[0].dataset.id, name: held[0].cells[0].textContent, waiters,
      line: document.getElementById('holder').textContent };
  })).jsonValue();
  await page.screenshot({ path: path.join(OUT, 'cluster-laptop.png'), fullPage: true });
  const holder = srvs.find((srv) => srv.id === shown.holder);
  assert.ok(holder, `the holder ${shown.holder} is one of the instances`);
  assert.ok(shown.name.startsWith(host(holder)) && shown.name.endsWith(' ★'), shown.name);
  assert.ok(shown.line.startsWith(`${host(holder)} holds the lock, for `), shown.line);
  assert.match(shown.line, /; [3-9] in the queue$/, 'the holder and its waiters');
  for (const w of shown.waiters.filter((t) => !t.startsWith('+')))
    assert.ok(srvs.some((srv) => host(srv) === w), `waiter ${w} named by its instance`);
  const bodies = await withDeadline(Promise.all(replies), 60000, 'every /access answered');
  assert.deepEqual(bodies.map((r) => r.status), Array(NREQ).fill(200));
  assert.deepEqual(bodies.map((r) => +r.body.split(' ')[2]).sort((a, b) => a - b), range(NREQ));
  await waitPage(page, (n) => document.getElementById('counter').textContent === String(n)
    && !document.querySelector('#members tr.holder')
    && document.getElementById('holder').textContent === 'Nobody holds the lock; the queue is empty.',
  NREQ);
}

// SIGKILL to an instance that does not serve the page: its row stays
// until its lease expires, then goes; the other two stay.
async function memberLeaves(page, srvs) {
  const gone = srvs[2];
  gone.proc.kill('SIGKILL');
  await withDeadline(gone.exited, 10000, 'the killed instance exiting');
  await waitPage(page, (id) => {
    const rows = document.querySelectorAll('#members tbody tr');
    return rows.length === 2 && Array.from(rows).every((tr) => tr.dataset.id !== id);
  }, gone.id, 40000);
  assert.deepEqual((await memberRows(page)).map((r) => r.id).sort(), [srvs[0].id, srvs[1].id].sort());
}

const cases = [['events stream', eventsStream], ['dashboard', dashboard],
  ['polling fallback', pollingFallback], ['cluster page', clusterPage]];
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
  await cleanUp();
}
if (browserPromise) await (await browserPromise.catch(() => null))?.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
