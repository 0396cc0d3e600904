// The devices: what the page knows of each (the device as v2 shows it, its
// telemetry points) and its card (name, status, last seen, chart, table of
// the latest points).
//
// Events are delivered at least once (docs/API.md §4a): a device change is
// applied only over an older `version`, a telemetry point only once per
// point `id`, whether it came from GET /telemetry/recent or the stream.
// Each card says what it holds in data attributes (data-points: distinct
// points received; data-repeats: points the stream delivered more than
// once, dropped), for people debugging and for tests/e2e. A point read
// with GET /telemetry/recent that also comes on the stream is no repeat:
// the read and the stream overlap by design.

import { createChart } from './chart.js';

const KEEP_POINTS = 1000; // per device, newest kept
const CHART_POINTS = 120; // the newest this many are drawn
const TABLE_ROWS = 50;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
const STATES = new Set(['online', 'offline', 'maintenance']);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children);
  return el;
}

/** "12 s ago", "3 min ago", "2 h ago", "5 d ago". */
export function ago(ms, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function metricsText(metrics) {
  return Object.entries(metrics || {})
    .map(([k, v]) => `${k} ${numberFormat.format(v)}`)
    .join(' · ');
}

function metaText(metadata) {
  return Object.entries(metadata || {})
    .filter(([, v]) => v === null || typeof v !== 'object')
    .slice(0, 4)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
}

function toPoint(p) {
  const t = Date.parse(p.ts);
  return { id: String(p.id), t: Number.isFinite(t) ? t : Date.now(), ts: p.ts, metrics: p.metrics || {} };
}

/**
 * @param {object} o
 * @param {HTMLElement} o.list  the <ul> the cards go in
 * @param {(id: string) => void} o.onUnknown  a point came for a device the page does not know
 */
export function createBoard({ list, onUnknown }) {
  const devices = new Map(); // id -> entry
  const deleted = new Set(); // ids deleted while the page watched: a stale list must not bring them back
  let idSeq = 0;

  function card(entry) {
    const n = ++idSeq;
    const nameId = `device-${n}-name`;
    const el = {};
    el.name = h('h3', { id: nameId, class: 'device-name' });
    el.statusText = h('span');
    el.status = h('span', { class: 'status' }, h('span', { class: 'visually-hidden' }, 'Status: '), el.statusText);
    el.meta = h('p', { class: 'device-meta' });
    el.lastSeen = h('time', { class: 'last-seen' });
    el.count = h('span', { class: 'point-count' }, '0 points');
    el.latestValues = h('span');
    el.latest = h('p', { class: 'latest' }, h('span', { class: 'visually-hidden' }, 'Latest: '), el.latestValues);
    el.select = h('select', { id: `device-${n}-metric` });
    el.select.addEventListener('change', () => {
      entry.metric = el.select.value;
      schedule(entry);
    });
    el.metricField = h('span', { class: 'metric-field', hidden: true },
      h('label', { for: `device-${n}-metric` }, 'Metric'), el.select);
    el.chart = createChart();
    el.rows = h('tbody');
    el.tableSummary = h('summary', {}, 'Latest points');
    el.li = h('li', { class: 'device', 'data-device-id': entry.id, 'data-points': 0, 'data-repeats': 0 },
      h('article', { 'aria-labelledby': nameId },
        h('header', { class: 'device-head' }, el.name, el.status),
        el.meta,
        h('p', { class: 'device-seen' }, 'Last seen ', el.lastSeen, ' · ', el.count),
        h('div', { class: 'device-chart' }, el.chart.svg,
          h('div', { class: 'chart-controls' }, el.metricField, el.latest)),
        h('details', { class: 'points' }, el.tableSummary,
          h('table', {},
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Values'))),
            el.rows))));
    return el;
  }

  function entryFor(id) {
    let entry = devices.get(id);
    if (!entry) {
      entry = {
        id, device: null, points: [], seen: new Set(), streamed: new Set(), total: 0, repeats: 0,
        metric: null, metrics: [], lastSeen: null, pending: false,
      };
      entry.el = card(entry);
      entryOf.set(entry.el.li, entry);
      devices.set(id, entry);
      renderHead(entry);
      place(entry);
    }
    return entry;
  }

  function label(entry) {
    return entry.device ? entry.device.name : `Device ${entry.id}`;
  }

  // cards in name order ("p2" before "p10"; then by id): a binary search
  // over the list, and a card is moved only when its place changed (a
  // move would take the focus away from its metric field)
  const order = (a, b) => collator.compare(label(a), label(b)) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const entryOf = new WeakMap(); // li -> entry

  function place(entry) {
    const li = entry.el.li;
    if (li.parentNode === list) {
      const prev = li.previousElementSibling;
      const next = li.nextElementSibling;
      if ((!prev || order(entryOf.get(prev), entry) <= 0) && (!next || order(entry, entryOf.get(next)) <= 0)) return;
      li.remove();
    }
    const kids = list.children;
    let lo = 0;
    let hi = kids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (order(entryOf.get(kids[mid]), entry) > 0) hi = mid;
      else lo = mid + 1;
    }
    list.insertBefore(li, kids[lo] || null);
  }

  function renderHead(entry) {
    const { el, device } = entry;
    el.name.textContent = label(entry);
    const state = device && STATES.has(device.status?.state) ? device.status.state : 'unknown';
    el.li.dataset.status = state;
    el.status.className = `status status-${state}`;
    el.statusText.textContent = state;
    el.meta.textContent = device ? metaText(device.metadata) : 'Loading…';
    el.meta.hidden = el.meta.textContent === '';
    const seen = Math.max(entry.lastSeen ?? -Infinity, device?.status?.last_seen_at ? Date.parse(device.status.last_seen_at) : -Infinity);
    if (Number.isFinite(seen)) {
      el.lastSeen.dateTime = new Date(seen).toISOString();
      el.lastSeen.textContent = ago(seen);
      el.lastSeen.title = new Date(seen).toLocaleString();
    } else {
      el.lastSeen.removeAttribute('datetime');
      el.lastSeen.textContent = 'never';
    }
  }

  // chart, table and counts: at most once a frame, however many points came
  function schedule(entry) {
    if (entry.pending) return;
    entry.pending = true;
    requestAnimationFrame(() => {
      entry.pending = false;
      if (devices.get(entry.id) === entry) renderData(entry);
    });
  }

  function renderData(entry) {
    const { el, points } = entry;
    // metrics in the order they first came: the first is what a device sends first
    const names = [...new Set(points.flatMap((p) => Object.keys(p.metrics)))];
    if (names.join() !== entry.metrics.join()) {
      entry.metrics = names;
      el.select.replaceChildren(...names.map((m) => h('option', { value: m }, m)));
      el.metricField.hidden = names.length < 2;
    }
    if (!entry.metric || !names.includes(entry.metric)) entry.metric = names[0] || null;
    el.select.value = entry.metric || '';

    const series = [];
    for (const p of points.slice(-CHART_POINTS)) {
      const v = p.metrics[entry.metric];
      if (typeof v === 'number') series.push({ t: p.t, v });
    }
    el.chart.draw(series, `${label(entry)}, ${entry.metric}`);
    const last = points[points.length - 1];
    el.latestValues.textContent = last ? metricsText(last.metrics) : '';
    el.latest.hidden = !last;

    const n = entry.total;
    el.count.textContent = `${n} point${n === 1 ? '' : 's'}`;
    const rows = points.slice(-TABLE_ROWS).reverse();
    el.tableSummary.textContent = `Latest points (${rows.length} of ${n})`;
    el.rows.replaceChildren(...rows.map((p) =>
      h('tr', { 'data-point-id': p.id },
        h('td', {}, h('time', { datetime: p.ts }, timeFormat.format(p.t))),
        h('td', {}, metricsText(p.metrics)))));
    renderHead(entry);
  }

  return {
    /** @returns {number} the devices shown */
    get size() {
      return devices.size;
    },

    /** @returns {boolean} whether the page has the device itself (not only points of it) */
    known(id) {
      return Boolean(devices.get(id)?.device);
    },

    /** @returns {string} a device's name, or its id while unknown */
    name(id) {
      const entry = devices.get(id);
      return entry ? label(entry) : id;
    },

    /**
     * A device as v2 shows it (a list page, GET /devices/{id}, a
     * device.updated event): applied unless the page holds a newer version.
     * @returns {boolean} whether it changed anything
     */
    upsert(device) {
      if (!device || typeof device.id !== 'string' || deleted.has(device.id)) return false;
      const entry = entryFor(device.id);
      if (entry.device && entry.device.version >= device.version) return false;
      entry.device = device;
      renderHead(entry);
      place(entry);
      return true;
    },

    /** A device.deleted event. */
    remove(id) {
      deleted.add(id);
      const entry = devices.get(id);
      if (!entry) return false;
      devices.delete(id);
      entry.el.li.remove();
      return true;
    },

    /**
     * Telemetry points ({id, device_id, ts, metrics}) of one device, from
     * GET /telemetry/recent or the stream (streamed), in any order; each
     * point id is taken once.
     * @returns {{ added: number, repeats: number }}  repeats: points the
     *   stream had delivered before
     */
    addPoints(deviceId, raw, { streamed = false } = {}) {
      if (deleted.has(deviceId)) return { added: 0, repeats: 0 };
      const known = devices.has(deviceId);
      const entry = entryFor(deviceId);
      if (!known && !entry.device) onUnknown(deviceId);
      let added = 0;
      let repeats = 0;
      for (const p of raw.map(toPoint)) {
        if (streamed) {
          if (entry.streamed.has(p.id)) repeats++;
          entry.streamed.add(p.id);
        }
        if (entry.seen.has(p.id)) continue;
        entry.seen.add(p.id);
        entry.total++;
        added++;
        entry.points.push(p);
        entry.lastSeen = Math.max(entry.lastSeen ?? -Infinity, p.t);
      }
      entry.repeats += repeats;
      entry.el.li.dataset.repeats = entry.repeats;
      if (added) {
        entry.points.sort((a, b) => a.t - b.t || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        // the oldest go, and what is known of them: memory stays bounded
        for (const old of entry.points.splice(0, Math.max(0, entry.points.length - KEEP_POINTS))) {
          entry.seen.delete(old.id);
          entry.streamed.delete(old.id);
        }
        entry.el.li.dataset.points = entry.total;
        schedule(entry);
      }
      return { added, repeats };
    },

    /** Forgets everything (a new login, a reset that reloads). */
    clear() {
      devices.clear();
      deleted.clear();
      list.replaceChildren();
    },

    /** Refreshes the "last seen" texts. */
    tick() {
      for (const entry of devices.values()) renderHead(entry);
    },
  };
}
