// The functions table of one namespace, refreshed every 3 s.

import { call, query } from './api.js';
import { h, replace, ago, millis } from './dom.js';

const REFRESH_MS = 3000;

/** The namespaces the provider has (the default one when it has none). */
export async function namespaces() {
  try {
    const list = await call('/system/namespaces');
    if (Array.isArray(list) && list.length) return list;
  } catch {
    // Providers without namespaces: the default one.
  }
  return ['openfaas-fn'];
}

function scaleToZero(fn) {
  const labels = fn.labels || {};
  const on = labels['com.openfaas.scale.zero'] === 'true';
  const state = on ? `on, after ${labels['com.openfaas.scale.zero-duration'] || '15m'} idle` : 'off';
  return fn.replicas === 0 ? `${state} (at zero)` : state;
}

function row(fn, stats) {
  const link = `#/fn/${encodeURIComponent(fn.namespace)}/${encodeURIComponent(fn.name)}`;
  const process = fn.envProcess ? `${fn.image} · ${fn.envProcess}` : fn.image;
  return h('tr', { 'data-fn': fn.name },
    h('td', {}, h('a', { href: link, class: 'fn-link' }, fn.name)),
    h('td', {}, process),
    h('td', { class: 'num replicas' }, `${fn.availableReplicas}/${fn.replicas}`),
    h('td', { class: 'num calls' }, stats ? stats.calls : 0),
    h('td', { class: 'num errors' }, stats ? stats.errors : 0),
    h('td', { class: 'num' }, millis(stats ? stats.p99Ms : null)),
    h('td', {}, ago(stats ? stats.lastCall : null)),
    h('td', {}, scaleToZero(fn)));
}

/** Renders the table into `main`; returns what stops its refresh. */
export function renderList(main) {
  const select = h('select', { id: 'namespace' });
  const filter = h('input', { id: 'filter', placeholder: 'filter by name', type: 'search' });
  const body = h('tbody', { id: 'functions' });
  const status = h('p', { class: 'muted', id: 'list-status' });
  main.append(
    h('h1', {}, 'Functions'),
    h('section', { class: 'card' },
      h('div', { class: 'row' },
        h('label', {}, 'Namespace', select),
        h('label', {}, 'Filter', filter),
        h('div', { class: 'fixed' }, h('a', { href: '#/deploy' }, h('button', { type: 'button' }, 'Deploy a function')))),
      h('table', {},
        h('thead', {}, h('tr', {}, ['Name', 'Image · process', 'Ready/desired', 'Calls (15 min)', 'Errors', 'p99',
          'Last call', 'Scale to zero'].map((t) => h('th', {}, t)))),
        body),
      status));
  let last = [];
  let stats = {};
  const draw = () => {
    const needle = filter.value.trim().toLowerCase();
    const shown = last.filter((fn) => fn.name.toLowerCase().includes(needle));
    replace(body, shown.map((fn) => row(fn, stats[fn.name])));
    status.textContent = `${shown.length} of ${last.length} functions · refreshed ${new Date().toLocaleTimeString()}`;
  };
  const refresh = async () => {
    const ns = select.value || 'openfaas-fn';
    try {
      const [list, summaries] = await Promise.all([
        call(`/system/functions${query({ namespace: ns })}`),
        call(`/system/metrics/history${query({ namespace: ns })}`).catch(() => []),
      ]);
      last = (list || []).map((fn) => ({ ...fn, namespace: fn.namespace || ns }))
        .sort((a, b) => a.name.localeCompare(b.name));
      stats = Object.fromEntries((summaries || []).map((s) => [s.name, s]));
      draw();
    } catch (err) {
      status.textContent = `Cannot list the functions: ${err.message}`;
    }
  };
  filter.addEventListener('input', draw);
  select.addEventListener('change', refresh);
  namespaces().then((names) => {
    replace(select, names.map((n) => h('option', { value: n }, n)));
    refresh();
  });
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
