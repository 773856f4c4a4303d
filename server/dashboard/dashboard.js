/* The dashboard's script (GET /): renders the /stats document, live from
 * GET /events or polled. scripts/embed_page.py inlines it into index.html;
 * the tests run node --check on it and drive it in Chromium. */
'use strict';
const $ = (id) => document.getElementById(id);
const WINDOW_S = 60;
/* {t, waiters, total, queue}: uptime_s, lock.waiters, requests.total and, in
 * cluster mode, cluster.queue.length */
const samples = [];
/* cluster's members that are lists, not rows: the glance card draws them. */
const VIEW = ['self', 'members', 'queue', 'etcd'];
let lastGrants = -1;
/* The groups of the /stats document that the page shows, each in its card. */
const groups = document.querySelectorAll('[data-group]');
/* /stats key ("lock.max_waiters") -> the element showing it. It starts with
 * the fields the page places itself (the big lock.waiters); render() adds
 * a row for every other one it meets. */
const cells = new Map(Array.from(document.querySelectorAll('[data-key]'), (e) => [e.dataset.key, e]));

function text(e, v) {
  if (e.textContent !== String(v)) e.textContent = v;
}

/* Microseconds in the unit that keeps 3 significant digits readable. */
function duration(us) {
  if (us < 1000) return us + ' µs';
  if (us < 1e6) return (us / 1000).toFixed(us < 1e4 ? 2 : 1) + ' ms';
  return (us / 1e6).toFixed(2) + ' s';
}

/* The unit is in the key: wait_us is a time; anything else is a count. */
function format(key, v) {
  return key.endsWith('_us') ? duration(v) : v;
}

/* max_waiters -> "max waiters", wait_us -> "wait" (the value shows the unit). */
function label(key) {
  return key.replace(/_us$/, '').replace(/_/g, ' ');
}

/* The element for key: found, or made as a new row of card's list. */
function row(card, key, name, depth) {
  let dd = cells.get(key);
  if (dd) return dd;
  const dt = document.createElement('dt');
  dt.textContent = label(name);
  dt.style.paddingLeft = depth + 'em';
  dd = document.createElement('dd');
  dd.className = 'num';
  dd.dataset.key = key;
  card.querySelector('dl').append(dt, dd);
  cells.set(key, dd);
  return dd;
}

/* card's table of histograms, made on first use: a column per histogram,
 * a row per field (p50 ... count), so that it fits a narrow card. */
function table(card) {
  let t = card.querySelector('table');
  if (!t) {
    t = document.createElement('table');
    t.className = 'num';
    t.createTHead().insertRow().append(document.createElement('th'));
    t.createTBody();
    card.append(t);
  }
  return t;
}

/* The row of table t for a histogram's field f, made on first use. */
function fieldRow(t, f) {
  const body = t.tBodies[0];
  let tr = Array.from(body.rows).find((r) => r.cells[0].textContent === f);
  if (!tr) {
    tr = body.insertRow();
    tr.append(Object.assign(document.createElement('th'), {textContent: f}));
  }
  return tr;
}

/* A histogram ({p50, p90, p99, max, count}) as a column of card's table:
 * times in the unit its key names (wait_us), the count as it is. */
function histogram(card, key, name, h) {
  if (!cells.has(key)) {
    const t = table(card);
    const th = Object.assign(document.createElement('th'), {textContent: label(name)});
    t.tHead.rows[0].append(th);
    cells.set(key, th);
    for (const f of Object.keys(h)) {
      const td = fieldRow(t, f).insertCell();
      td.dataset.key = key + '.' + f;
      cells.set(td.dataset.key, td);
    }
  }
  for (const [f, v] of Object.entries(h))
    text(cells.get(key + '.' + f), f === 'count' ? v : h.count ? format(name, v) : '–');
}

/* Every field of a /stats group, in document order, so that a counter the
 * server adds shows here with no edit: a number as a labelled row (unless
 * the page shows it elsewhere), a histogram in the card's table, an object
 * of numbers (requests.responses) as rows nested under its name. Booleans
 * (lock.locked) are the badge's, but for the cluster's (healthy), which
 * show as words, as its strings (the etcd endpoint, the lease) do. */
function fields(card, path, obj, depth = 0) {
  for (const [name, v] of Object.entries(obj)) {
    const key = path + '.' + name;
    if (typeof v === 'number' || typeof v === 'string') {
      text(row(card, key, name, depth), typeof v === 'string' ? v || '—' : format(name, v));
    } else if (typeof v === 'boolean' && path === 'cluster') {
      text(row(card, key, name, depth), v ? 'yes' : 'no');
    } else if (v && typeof v === 'object' && !Array.isArray(v)) {
      if ('p50' in v) { /* keyed by name: what makes an object a histogram */
        histogram(card, key, name, v);
      } else {
        row(card, key, name, depth);
        fields(card, key, v, depth + 1);
      }
    }
  }
}

function addSample(s) {
  const last = samples[samples.length - 1];
  if (last && s.uptime_s < last.t) samples.length = 0; /* the server restarted */
  const q = s.cluster && s.cluster.queue;
  samples.push({t: s.uptime_s, waiters: s.lock.waiters, total: s.requests.total,
    queue: q ? q.length : 0});
  while (samples[0].t < s.uptime_s - WINDOW_S - 1) samples.shift();
}

/* Over the last second or so of samples: one sample alone says nothing. */
function rate() {
  const last = samples[samples.length - 1];
  let first = last;
  for (let i = samples.length - 1; i >= 0 && last.t - samples[i].t <= 1.05; i--) first = samples[i];
  return last.t > first.t ? (last.total - first.total) / (last.t - first.t) : 0;
}

function lockState(l) {
  const e = $('lock');
  const state = !l.enabled ? 'off' : l.locked ? 'held' : 'free';
  e.className = 'badge ' + state;
  text(e, state === 'off' ? 'off (--no-lock)' : state);
}

function grants(g) {
  if (g.total === lastGrants) return;
  lastGrants = g.total;
  const waited = g.time === 'wait_us';
  text($('grants-note'), (waited ? 'Each N with its wait for the lock.'
    : 'Each N with its time from asking for the lock to the end of its section (queue wait + work).')
    + ' ' + g.total + ' granted so far.');
  const list = $('grants');
  list.textContent = '';
  for (const r of g.recent) {
    const li = document.createElement('li');
    li.dataset.n = r.n;
    li.title = 'N ' + r.n + ' at ' + r.at_s.toFixed(2) + ' s';
    li.textContent = r.n;
    const t = document.createElement('small');
    t.textContent = duration(r[g.time]);
    li.append(t);
    list.append(li);
  }
}

/* A table cell (or a row's first cell) holding text: never HTML, since
 * members' fields come from other processes through etcd. */
function cell(tr, v, title) {
  const td = tr.insertCell();
  td.textContent = v;
  if (title) td.title = title;
  return td;
}

/* A bar of part against whole; past 80 % it turns red. */
function bar(td, part, whole) {
  const b = document.createElement('span'), fill = document.createElement('i');
  const pct = whole ? Math.min(100, part / whole * 100) : 0;
  b.className = 'bar' + (pct > 80 ? ' high' : '');
  fill.style.width = pct.toFixed(1) + '%';
  b.title = whole ? pct.toFixed(1) + ' %' : '';
  b.append(fill);
  td.append(b);
}

function bytes(n) {
  if (n < 1 << 20) return (n / 1024).toFixed(0) + ' KiB';
  if (n < 1 << 30) return (n / (1 << 20)).toFixed(1) + ' MiB';
  return (n / (1 << 30)).toFixed(2) + ' GiB';
}

/* Seconds as the largest whole unit: 42 s, 5 min, 3 h, 2 d. */
function age(s) {
  const units = [[86400, 'd'], [3600, 'h'], [60, 'min']];
  for (const [n, u] of units) if (s >= n) return Math.floor(s / n) + ' ' + u;
  return Math.max(0, Math.floor(s)) + ' s';
}

/* A member as an operator knows it: where it serves; its id when it says none. */
function memberName(c, id) {
  const m = c.members.list.find((x) => x.id === id);
  return m && m.addr ? m.addr.replace(/^https?:\/\//, '') : id.slice(0, 8);
}

function members(c) {
  const body = $('members').tBodies[0], q = c.queue;
  body.textContent = '';
  for (const m of c.members.list) {
    const tr = body.insertRow();
    tr.className = m.holder ? 'holder' : '';
    tr.dataset.id = m.id;
    cell(tr, memberName(c, m.id) + (m.self ? ' (this page)' : '') + (m.holder ? ' ★' : ''), m.id);
    cell(tr, m.version);
    cell(tr, m.loops);
    cell(tr, age(Date.now() / 1000 - m.started));
    cell(tr, m.queued);
    bar(cell(tr, ''), m.queued, q.length);
  }
}

function queueView(c) {
  const q = c.queue, h = q.holder;
  text($('holder'), h ? memberName(c, h.member) + ' holds the lock, for ' + duration(h.held_ms * 1000)
    + '; ' + q.length + ' in the queue' + (c.members.stale ? ' (members: etcd did not answer)' : '')
    : 'Nobody holds the lock; the queue is empty.');
  const list = $('waiters');
  list.textContent = '';
  for (const w of q.waiters) {
    const li = document.createElement('li');
    li.textContent = memberName(c, w.member);
    li.title = 'revision ' + w.revision;
    list.append(li);
  }
  if (q.length > q.waiters.length + 1) {
    const li = document.createElement('li');
    li.className = 'pending';
    li.textContent = '+' + (q.length - q.waiters.length - 1);
    list.append(li);
  }
}

function etcdRows(rows) {
  const body = $('etcd-rows').tBodies[0];
  body.textContent = '';
  for (const e of rows) {
    const tr = body.insertRow();
    tr.className = e.reachable ? '' : 'down';
    cell(tr, e.endpoint.replace(/^https?:\/\//, '') + (e.leader ? ' (leader)' : ''),
      e.reachable ? 'member ' + e.member_id + ', etcd ' + e.version : e.error);
    cell(tr, e.reachable ? e.raft_term : 'down');
    const size = cell(tr, e.reachable ? bytes(e.db_size) : '–',
      'in use ' + bytes(e.db_size_in_use) + (e.quota ? ' of a ' + bytes(e.quota) + ' quota' : ''));
    if (e.reachable && e.quota) bar(size, e.db_size, e.quota);
    for (const a of e.alarms) {
      const s = document.createElement('span');
      s.className = 'alarm';
      s.textContent = ' ' + a;
      size.append(s);
    }
  }
}

/* The cluster at a glance, in cluster mode: the card, and the instance
 * serving the page named in the header (behind a balancer, each load may
 * come from another). */
function glance(c) {
  const on = !!(c && c.members);
  $('glance').hidden = $('etcd').hidden = $('served-by').hidden = !on;
  if (!on) return;
  text($('served-by'), 'served by ' + memberName(c, c.self) + ' (' + c.self + ')');
  members(c);
  queueView(c);
  etcdRows(c.etcd);
  draw('qchart', 'queue');
}

/* cluster's rows, without the lists the glance card shows. */
function clusterRows(g) {
  return Object.fromEntries(Object.entries(g).filter(([k]) => !VIEW.includes(k)));
}

function render(s) {
  addSample(s);
  text($('counter'), s.counter);
  text($('uptime'), s.uptime_s.toFixed(0));
  lockState(s.lock);
  for (const card of groups) {
    const g = s[card.dataset.group];
    card.hidden = card.dataset.group === 'cluster' && !(g && g.enabled); /* without --etcd */
    if (!card.hidden)
      fields(card, card.dataset.group, card.dataset.group === 'cluster' ? clusterRows(g) : g);
  }
  text($('rps'), rate().toFixed(1));
  if (s.grants) grants(s.grants);
  draw();
  glance(s.cluster);
}

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/* A step chart of a sample's field (lock.waiters in #chart): it only
 * changes at the samples. */
function draw(id = 'chart', field = 'waiters') {
  const c = $(id), dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 30, right = w - 6, top = 8, bottom = h - 20;
  const now = samples.length ? samples[samples.length - 1].t : 0;
  const peak = Math.max(4, ...samples.map((p) => p[field]));
  const ymax = Math.ceil(peak / 4) * 4;
  const x = (t) => right - (now - t) / WINDOW_S * (right - left);
  const y = (v) => bottom - v / ymax * (bottom - top);
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = css('--muted');
  g.strokeStyle = css('--line');
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (const v of [0, ymax / 2, ymax]) {
    g.beginPath();
    g.moveTo(left, Math.round(y(v)) + .5);
    g.lineTo(right, Math.round(y(v)) + .5);
    g.stroke();
    g.fillText(v, left - 6, y(v));
  }
  g.textBaseline = 'top';
  g.fillText('now', right, bottom + 6);
  g.textAlign = 'left';
  g.fillText('-' + WINDOW_S + ' s', left, bottom + 6);
  const pts = samples.filter((p) => p.t >= now - WINDOW_S);
  if (pts.length < 2) return;
  g.beginPath();
  g.moveTo(x(pts[0].t), y(pts[0][field]));
  for (let i = 1; i < pts.length; i++) {
    g.lineTo(x(pts[i].t), y(pts[i - 1][field]));
    g.lineTo(x(pts[i].t), y(pts[i][field]));
  }
  g.strokeStyle = css('--accent');
  g.lineWidth = 1.5;
  g.stroke();
  g.lineTo(x(now), bottom);
  g.lineTo(x(pts[0].t), bottom);
  g.fillStyle = css('--fill');
  g.fill();
}

function status(kind, words) {
  $('status').className = 'sub ' + kind;
  text($('status'), words);
}

/* Server-sent events; if they fail before the first message, poll. */
function connect() {
  if (!window.EventSource) return poll();
  const es = new EventSource('/events');
  let seen = false;
  es.onmessage = (e) => {
    seen = true;
    status('live', 'live');
    render(JSON.parse(e.data));
  };
  es.onerror = () => {
    if (!seen || es.readyState === EventSource.CLOSED) {
      es.close();
      poll();
    } else {
      status('offline', 'reconnecting');
    }
  };
}

async function poll() {
  for (;;) {
    try {
      const r = await fetch('/stats', {cache: 'no-store'});
      render(await r.json());
      status('polling', 'polling /stats');
    } catch (err) {
      status('offline', 'offline');
    }
    await new Promise((done) => setTimeout(done, 500));
  }
}

async function one(i, n, list) {
  const li = document.createElement('li');
  li.className = 'pending';
  li.textContent = '…';
  list.append(li);
  try {
    const r = await fetch('/access', {cache: 'no-store'});
    const body = await r.text();
    /* Resource accessed N times. */
    li.textContent = r.ok ? body.split(' ')[2] : r.status;
    li.className = r.ok ? '' : 'fail';
  } catch (err) {
    li.textContent = '✕';
    li.className = 'fail';
  }
  li.title = 'request ' + (i + 1) + ' of ' + n + ': ' + li.textContent;
  /* Replies line up in the order they came back, ahead of those pending. */
  list.insertBefore(li, list.querySelector('.pending'));
}

$('send').onsubmit = async (e) => {
  e.preventDefault();
  const n = Math.min(200, Math.max(1, parseInt($('send-n').value, 10) || 20));
  const list = $('replies');
  list.textContent = '';
  $('send-btn').disabled = true;
  await Promise.all(Array.from({length: n}, (_, i) => one(i, n, list)));
  $('send-btn').disabled = false;
};

window.addEventListener('resize', () => {
  draw();
  if (!$('glance').hidden) draw('qchart', 'queue');
});
connect();
