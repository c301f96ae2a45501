// The dashboard page. It follows the audit trail over server-sent events (/api/events) and
// asks for the summary and the approvals now and then. Everything it shows comes from the
// trail or the stores, which any process writing to them controls: values are put on the page
// as text (textContent, option text, SVG <title>), never parsed as HTML.
'use strict';

const WINDOW_MS = 60 * 60 * 1000;
const MINUTE_MS = 60 * 1000;
const MINUTES = 60;
/** Calls kept in memory, the newest. */
const MAX_CALLS = 5000;
const SHOWN_CALLS = 100;
const SHOWN_DENIALS = 50;
const SHOWN_COUNTERS = 40;
const MAX_OPTIONS = 300;
const MAX_ARGS_CHARS = 2000;
const SUMMARY_EVERY_MS = 5000;
const APPROVALS_EVERY_MS = 2000;
/** Without a heartbeat for this long, the stream is taken as lost. */
const STALE_MS = 45 * 1000;

const SVG = 'http://www.w3.org/2000/svg';

const state = {
  /** tool_call records, oldest first. */
  calls: [],
  seen: new Set(),
  tools: new Set(),
  sessions: new Set(),
  filters: { tool: '', decision: '', session: '' },
  /** Approval cards by request id. */
  cards: new Map(),
  lastBeat: 0,
  streamOpen: false,
  /** Records that arrived since the last render (to mark as new). */
  fresh: new Set(),
};

const $ = (id) => document.getElementById(id);

/** An element with text content and classes; `title` for the full text of a cut cell. */
function el(tag, text, className, title) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  if (title) node.title = String(title);
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

const pad = (n) => String(n).padStart(2, '0');
function clock(ms, seconds = true) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}${seconds ? `:${pad(d.getSeconds())}` : ''}`;
}
function span(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
const cut = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const str = (v) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

// ------------------------------------------------------------------------------ the stream

function connect() {
  const source = new EventSource(`/api/events?since=${Date.now() - WINDOW_MS}`);
  source.addEventListener('open', () => {
    state.streamOpen = true;
    state.lastBeat = Date.now();
    showConnection();
  });
  source.addEventListener('error', () => {
    state.streamOpen = source.readyState === EventSource.OPEN;
    // CLOSED: the browser gave up (a 401 after the dashboard restarted, say).
    showConnection(source.readyState === EventSource.CLOSED);
  });
  source.addEventListener('heartbeat', () => {
    state.lastBeat = Date.now();
    showConnection();
  });
  source.addEventListener('record', (event) => {
    let record;
    try {
      record = JSON.parse(event.data);
    } catch {
      return;
    }
    onRecord(record, event.lastEventId);
  });
  source.addEventListener('trouble', (event) => {
    try {
      showTrouble(str(JSON.parse(event.data).error));
    } catch {
      showTrouble('the trail cannot be read');
    }
  });
}

function showConnection(closed = false) {
  const pill = $('connection');
  const live = state.streamOpen && Date.now() - state.lastBeat < STALE_MS;
  pill.className = `pill ${live ? 'pill-live' : closed ? 'pill-down' : 'pill-wait'}`;
  pill.textContent = live ? 'live' : closed ? 'disconnected: reload the page' : 'reconnecting…';
}

function showTrouble(text) {
  const node = $('trouble');
  node.textContent = text;
  node.hidden = text === '';
}

function onRecord(record, id) {
  if (typeof record !== 'object' || record === null) return;
  if (id) {
    // A reconnection may send again what the page already has.
    if (state.seen.has(id)) return;
    if (state.seen.size >= 2 * MAX_CALLS) state.seen.clear();
    state.seen.add(id);
  }
  const type = str(record.type);
  if (type === 'tool_call') {
    record.at = Date.parse(str(record.ts));
    if (!Number.isFinite(record.at)) return;
    state.calls.push(record);
    state.fresh.add(record);
    if (state.calls.length > MAX_CALLS) state.calls.splice(0, state.calls.length - MAX_CALLS);
    addOption('tool', str(record.tool));
    addOption('session', str(record.session));
    soon('render', render, 100);
    soon('summary', refreshSummary, 1000);
  } else if (type.startsWith('approval_')) {
    soon('approvals', refreshApprovals, 150);
    soon('summary', refreshSummary, 500);
  } else if (type === 'startup' || type === 'shutdown') {
    soon('summary', refreshSummary, 300);
  }
}

const timers = new Map();
/** Runs `fn` once after `ms`, however often it is asked for meanwhile. */
function soon(name, fn, ms) {
  if (timers.has(name)) return;
  timers.set(
    name,
    setTimeout(() => {
      timers.delete(name);
      fn();
    }, ms),
  );
}

// ------------------------------------------------------------------------------ filters

function addOption(kind, value) {
  const set = kind === 'tool' ? state.tools : state.sessions;
  if (value === '' || set.has(value) || set.size >= MAX_OPTIONS) return;
  set.add(value);
  const select = $(`filter-${kind}`);
  const option = new Option(cut(value, 48), value);
  option.title = value;
  // Kept sorted, after the "all" option.
  const after = [...select.options].slice(1).find((o) => o.value > value);
  select.add(option, after ?? null);
}

function readFilters() {
  state.filters = { tool: $('filter-tool').value, decision: $('filter-decision').value, session: $('filter-session').value };
  render();
}

function matches(call) {
  const f = state.filters;
  return (f.tool === '' || call.tool === f.tool) && (f.decision === '' || call.decision === f.decision) && (f.session === '' || call.session === f.session);
}

// ------------------------------------------------------------------------------ rendering

function render() {
  const from = Date.now() - WINDOW_MS;
  const shown = state.calls.filter((c) => c.at >= from && matches(c));
  renderChart(shown);
  renderCalls(shown);
  renderDenials(shown);
  state.fresh.clear();
}

function renderCalls(calls) {
  const body = $('calls-body');
  const rows = [];
  for (let i = calls.length - 1; i >= 0 && rows.length < SHOWN_CALLS; i--) {
    const c = calls[i];
    const tr = el('tr', undefined, state.fresh.has(c) ? 'new' : '');
    tr.append(el('td', clock(c.at), 'mono', str(c.ts)));
    tr.append(el('td', str(c.tool), undefined, str(c.tool)));
    const decision = el('td');
    decision.append(el('span', str(c.decision), `badge badge-${c.decision === 'deny' ? 'deny' : c.decision === 'allow' ? 'allow' : 'cancelled'}`));
    if (c.dryRun) decision.append(' ', el('span', 'dry-run', 'badge badge-dry', 'forwarded; the policy would have denied it'));
    tr.append(decision);
    const detail = c.decision === 'deny' || c.dryRun ? str(c.kind) : str(c.outcome);
    tr.append(el('td', detail, undefined, c.error ? str(c.error) : detail));
    tr.append(el('td', str(c.rule), undefined, str(c.rule)));
    tr.append(el('td', cut(str(c.session), 24), 'mono', str(c.session)));
    const ms = (Number(c.decisionMs) || 0) + (Number(c.upstreamMs) || 0);
    tr.append(el('td', String(Math.round(ms)), 'num'));
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  $('calls-note').textContent = calls.length === 0 ? (state.calls.length === 0 ? 'no calls in the last hour' : 'no calls match the filters') : '';
  $('calls-sub').textContent = calls.length > SHOWN_CALLS ? `the latest ${SHOWN_CALLS} of ${calls.length}` : calls.length === 0 ? '' : `${calls.length} in the last hour`;
}

function renderDenials(calls) {
  const body = $('denials-body');
  const rows = [];
  let total = 0;
  for (let i = calls.length - 1; i >= 0; i--) {
    const c = calls[i];
    if (c.decision !== 'deny' && !c.dryRun) continue;
    total++;
    if (rows.length >= 2 * SHOWN_DENIALS) continue;
    // Two rows: what denied it, then the message the agent read, across the table.
    const fresh = state.fresh.has(c) ? ' new' : '';
    const tr = el('tr', undefined, `denial${fresh}`);
    tr.append(el('td', clock(c.at), 'mono', str(c.ts)));
    tr.append(el('td', str(c.tool), undefined, str(c.tool)));
    const kind = el('td', str(c.kind), undefined, str(c.kind));
    if (c.dryRun) kind.append(' ', el('span', 'dry-run', 'badge badge-dry'));
    tr.append(kind);
    tr.append(el('td', str(c.rule), undefined, str(c.rule)));
    const message = el('tr', undefined, `denial-message${fresh}`);
    const text = el('td', cut(str(c.message), 300), 'wrap', str(c.message));
    text.colSpan = 4;
    message.append(text);
    rows.push(tr, message);
  }
  body.replaceChildren(...rows);
  $('denials-note').textContent = total === 0 ? 'no denials in the last hour' : '';
  $('denials-sub').textContent = total === 0 ? '' : `${total} in the last hour`;
}

/** Stacked bars per minute, the current minute last: denied at the bottom, then cancelled,
 * then allowed. */
function renderChart(calls) {
  const chart = $('chart');
  const W = 720;
  const H = 200;
  const left = 34;
  const bottom = 20;
  const top = 8;
  const plotH = H - bottom - top;
  const now = Date.now();
  const firstMinute = Math.floor(now / MINUTE_MS) * MINUTE_MS - (MINUTES - 1) * MINUTE_MS;
  const buckets = Array.from({ length: MINUTES }, (_, i) => ({ start: firstMinute + i * MINUTE_MS, allowed: 0, denied: 0, other: 0 }));
  for (const c of calls) {
    const i = Math.floor((c.at - firstMinute) / MINUTE_MS);
    if (i < 0 || i >= MINUTES) continue;
    const b = buckets[i];
    if (c.decision === 'deny') b.denied++;
    else if (c.decision === 'allow') b.allowed++;
    else b.other++;
  }
  const most = Math.max(1, ...buckets.map((b) => b.allowed + b.denied + b.other));
  const yMax = niceCeiling(most);
  const y = (n) => top + plotH - (n / yMax) * plotH;
  const slot = (W - left - 4) / MINUTES;
  const nodes = [];
  for (const n of [0, yMax / 2, yMax]) {
    nodes.push(svg('line', { x1: left, x2: W, y1: y(n), y2: y(n), class: 'grid-line' }));
    nodes.push(svg('text', { x: left - 6, y: y(n) + 3, 'text-anchor': 'end', class: 'axis' }, Number.isInteger(n) ? n : n.toFixed(1)));
  }
  buckets.forEach((b, i) => {
    const x = left + i * slot + 1;
    const w = Math.max(1, slot - 2);
    let base = 0;
    const group = svg('g', {});
    for (const [part, count] of [['denied', b.denied], ['other', b.other], ['allowed', b.allowed]]) {
      if (count === 0) continue;
      group.append(svg('rect', { x, width: w, y: y(base + count), height: y(base) - y(base + count), class: `bar-${part}` }));
      base += count;
    }
    const hit = svg('rect', { x: x - 1, width: slot, y: top, height: plotH, class: 'hit' });
    hit.append(svg('title', {}, `${clock(b.start, false)}: ${b.allowed + b.denied + b.other} calls, ${b.denied} denied${b.other ? `, ${b.other} cancelled` : ''}`));
    group.append(hit);
    nodes.push(group);
    if (i % 10 === 0 || i === MINUTES - 1) {
      nodes.push(svg('text', { x: x + w / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis' }, i === MINUTES - 1 ? 'now' : clock(b.start, false)));
    }
  });
  chart.replaceChildren(...nodes);
}

/** 1, 2, 5, 10, 20, 50, … at or above n. */
function niceCeiling(n) {
  let step = 1;
  for (;;) {
    for (const m of [1, 2, 5]) if (m * step >= n) return m * step;
    step *= 10;
  }
}

// ------------------------------------------------------------------------------ the summary

async function getJson(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(str(body.error) || `HTTP ${res.status}`);
  return body;
}

async function refreshSummary() {
  let s;
  try {
    s = await getJson('/api/summary?since=1h');
  } catch (err) {
    showTrouble(`summary: ${err.message}`);
    return;
  }
  showTrouble('');
  const calls = s.calls || {};
  $('total-calls').textContent = String(calls.total ?? 0);
  $('total-allowed').textContent = String(calls.allowed ?? 0);
  $('total-denied').textContent = `${calls.denied ?? 0}${calls.total ? ` (${((calls.deniedShare || 0) * 100).toFixed(0)}%)` : ''}`;
  $('trail-dir').textContent = str(s.eventsDir);
  $('policy-file').textContent = s.policy ? str(s.policy) : 'none (start with -c to see approvals and counters)';
  renderCounters(s.counters, s.countersProblem);
  renderProxies(Array.isArray(s.proxies) ? s.proxies : []);
}

function renderCounters(counters, problem) {
  const list = $('counters');
  if (!Array.isArray(counters)) {
    list.replaceChildren();
    $('counters-note').textContent = str(problem) || 'the counters cannot be read';
    return;
  }
  const items = counters.slice(0, SHOWN_COUNTERS).map((u) => {
    const li = el('li', undefined, 'counter');
    const name = el('div', undefined, 'counter-name', str(u.counter));
    name.append(el('div', str(u.counter)));
    name.append(el('div', u.scope === 'session' ? `per session · ${cut(str(u.session), 32)} · ${str(u.window)}` : `global · ${str(u.window)}`, 'counter-scope', str(u.session)));
    li.append(name);
    const meter = document.createElement('meter');
    const max = Number(u.max) > 0 ? Number(u.max) : 1;
    meter.min = 0;
    meter.max = max;
    meter.value = Math.min(Number(u.value) || 0, max);
    meter.low = max * 0.75;
    meter.high = max * 0.9;
    meter.optimum = 0;
    meter.title = `${Math.round((Number(u.ratio) || 0) * 100)}% of the limit`;
    li.append(meter);
    li.append(el('div', `${trim(u.value)} / ${trim(u.max)}`, 'counter-value'));
    return li;
  });
  list.replaceChildren(...items);
  $('counters-note').textContent = counters.length === 0 ? 'the policy has no counters with a limit (keyed counters are not listed)' : counters.length > SHOWN_COUNTERS ? `the ${SHOWN_COUNTERS} most used of ${counters.length}` : '';
}

function trim(n) {
  const v = Number(n) || 0;
  return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(3)));
}

function renderProxies(proxies) {
  const rows = proxies.map((p) => {
    const tr = el('tr');
    tr.append(el('td', shortInstance(str(p.instance)), 'mono', str(p.instance)));
    tr.append(el('td', str(p.state), `state-${p.state === 'running' ? 'running' : p.state === 'exited' ? 'exited' : 'unknown'}`));
    tr.append(el('td', str(p.transport) || '?'));
    tr.append(el('td', cut(str(p.upstream), 40) || '?', undefined, str(p.upstream)));
    tr.append(el('td', String(Number(p.calls) || 0), 'num'));
    const last = Date.parse(str(p.lastSeen));
    tr.append(el('td', Number.isFinite(last) ? `${span(Date.now() - last)} ago` : '?', undefined, str(p.lastSeen)));
    return tr;
  });
  $('proxies-body').replaceChildren(...rows);
  $('proxies-note').textContent = proxies.length === 0 ? 'no proxy wrote to the trail in the last hour' : '';
}

/** host-pid-abcdef → pid-abcdef. */
function shortInstance(instance) {
  const m = /(\d+-[0-9a-f]{6})$/.exec(instance);
  return m ? m[1] : instance;
}

// ------------------------------------------------------------------------------ approvals

async function refreshApprovals() {
  let answer;
  try {
    answer = await getJson('/api/approvals');
  } catch (err) {
    $('approvals-note').textContent = `cannot list the approvals: ${err.message}`;
    return;
  }
  if (!Array.isArray(answer.approvals)) {
    $('approvals-note').textContent = str(answer.problem);
    $('total-pending').textContent = answer.enabled ? '?' : '–';
    return;
  }
  const pending = answer.approvals.filter((a) => a.status === 'pending' && typeof a.id === 'string');
  const ids = new Set(pending.map((a) => a.id));
  for (const [id, card] of state.cards) {
    // A card being decided stays until its answer is shown.
    if (!ids.has(id) && !card.busy) {
      card.node.remove();
      state.cards.delete(id);
    }
  }
  const list = $('approvals');
  for (const a of pending) {
    if (!state.cards.has(a.id)) {
      const card = approvalCard(a);
      state.cards.set(a.id, card);
      list.prepend(card.node);
    }
  }
  tickApprovals();
  $('approvals-count').textContent = pending.length === 0 ? '' : String(pending.length);
  $('total-pending').textContent = String(pending.length);
  $('approvals-note').textContent = pending.length === 0 ? 'no call is waiting for a human' : '';
}

function approvalCard(a) {
  const node = $('approval-template').content.firstElementChild.cloneNode(true);
  node.dataset.id = a.id;
  const q = (cls) => node.querySelector(`.${cls}`);
  q('approval-tool').textContent = str(a.tool);
  q('approval-rule').textContent = `rule ${str(a.rule)} · ${str(a.mode)}, scope ${str(a.scope)}`;
  q('approval-session').textContent = `agent ${cut(str(a.session), 32)}`;
  q('approval-session').title = str(a.session);
  let args;
  try {
    args = JSON.stringify(a.arguments, null, 2);
  } catch {
    args = '(arguments cannot be shown)';
  }
  q('approval-args').textContent = cut(str(args), MAX_ARGS_CHARS);
  const card = { node, record: a, busy: false };
  q('approve').addEventListener('click', () => decide(card, true));
  q('deny').addEventListener('click', () => decide(card, false));
  return card;
}

function tickApprovals() {
  const now = Date.now();
  for (const { node, record } of state.cards.values()) {
    const requested = Date.parse(str(record.requestedAt));
    const expires = Date.parse(str(record.expiresAt));
    node.querySelector('.approval-age').textContent = Number.isFinite(requested) ? `asked ${span(now - requested)} ago` : '';
    node.querySelector('.approval-expiry').textContent = Number.isFinite(expires) ? (expires > now ? `expires in ${span(expires - now)}` : 'expired') : '';
  }
}

async function decide(card, approve) {
  const { node, record } = card;
  const buttons = node.querySelectorAll('button');
  const reasonInput = node.querySelector('.approval-reason');
  const result = node.querySelector('.approval-result');
  card.busy = true;
  for (const b of buttons) b.disabled = true;
  reasonInput.disabled = true;
  const reason = reasonInput.value.trim();
  let ok = false;
  let message;
  try {
    const res = await fetch(`/api/approvals/${encodeURIComponent(record.id)}/${approve ? 'approve' : 'deny'}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(reason === '' ? {} : { reason }),
      cache: 'no-store',
    });
    const body = await res.json().catch(() => ({}));
    ok = res.ok;
    message = ok ? `${approve ? 'Approved' : 'Denied'} by ${str(body.decidedBy)}` : str(body.error) || `HTTP ${res.status}`;
    // Already decided elsewhere: there is nothing left to do here either.
    if (res.status === 409 || res.status === 404) ok = true;
  } catch (err) {
    message = `not sent: ${err.message}`;
  }
  result.textContent = message;
  result.className = `approval-result${ok ? '' : ' failed'}`;
  result.hidden = false;
  if (ok) {
    node.classList.add('decided');
    setTimeout(() => {
      card.busy = false;
      refreshApprovals();
    }, 1500);
  } else {
    card.busy = false;
    for (const b of buttons) b.disabled = false;
    reasonInput.disabled = false;
  }
}

// ------------------------------------------------------------------------------ start

function start() {
  for (const id of ['filter-tool', 'filter-decision', 'filter-session']) $(id).addEventListener('change', readFilters);
  const form = $('filters');
  form.addEventListener('submit', (e) => e.preventDefault());
  // The form's values are reset after its reset event.
  form.addEventListener('reset', () => setTimeout(readFilters, 0));
  render();
  connect();
  refreshSummary();
  refreshApprovals();
  setInterval(refreshSummary, SUMMARY_EVERY_MS);
  setInterval(refreshApprovals, APPROVALS_EVERY_MS);
  setInterval(() => {
    tickApprovals();
    showConnection();
  }, 1000);
  // The chart's minutes move on even when nothing happens.
  setInterval(render, 15 * 1000);
}

start();
