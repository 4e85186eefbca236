// One function: its deployment, URLs, invoke panel, scale control, live
// logs, charts, and delete with confirmation.

import { call, query } from './api.js';
import { h, replace, pairs } from './dom.js';
import { invokePanel } from './invoke.js';
import { logsPanel } from './logs.js';
import { drawCharts } from './charts.js';

const STATUS_MS = 2000;
const CHARTS_MS = 5000;

function deployment(fn) {
  const limits = fn.limits ? `memory ${fn.limits.memory || '–'}, cpu ${fn.limits.cpu || '–'}` : '–';
  const requests = fn.requests ? `memory ${fn.requests.memory || '–'}, cpu ${fn.requests.cpu || '–'}` : '–';
  // Secrets are names: their values never leave the gateway.
  const secrets = (fn.secrets || []).length ? fn.secrets.map((s) => h('span', { class: 'tag' }, s)) : '–';
  return h('dl', { class: 'kv', id: 'deployment' },
    h('dt', {}, 'Image'), h('dd', {}, fn.image || '–'),
    h('dt', {}, 'Process'), h('dd', {}, fn.envProcess || '–'),
    h('dt', {}, 'Environment'), h('dd', {}, pairs(fn.envVars)),
    h('dt', {}, 'Secrets'), h('dd', {}, secrets),
    h('dt', {}, 'Labels'), h('dd', { id: 'labels' }, pairs(fn.labels)),
    h('dt', {}, 'Annotations'), h('dd', {}, pairs(fn.annotations)),
    h('dt', {}, 'Limits'), h('dd', {}, limits),
    h('dt', {}, 'Requests'), h('dd', {}, requests),
    h('dt', {}, 'Constraints'), h('dd', {}, (fn.constraints || []).join(', ') || '–'),
    h('dt', {}, 'Created'), h('dd', {}, fn.createdAt ? new Date(fn.createdAt).toLocaleString() : '–'));
}

function scaleControl(name, namespace, say) {
  const input = h('input', { id: 'scale-replicas', type: 'number', min: 0, value: 1 });
  return h('form', {
    class: 'row',
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await call(`/system/scale-function/${encodeURIComponent(name)}${query({ namespace })}`, {
          method: 'POST', json: { serviceName: name, namespace, replicas: Number(input.value) },
        });
        say(`asked for ${input.value} replicas`);
      } catch (err) {
        say(err.message, true);
      }
    },
  }, h('label', {}, 'Replicas', input), h('div', { class: 'fixed' }, h('button', { id: 'scale-apply', type: 'submit' }, 'Scale')));
}

function deleteControl(name, namespace, say) {
  const box = h('div', { class: 'confirm' });
  const ask = h('button', {
    id: 'delete', class: 'danger', type: 'button',
    onclick: () => replace(box,
      h('span', {}, `Delete ${name}? This cannot be undone. `),
      h('button', {
        id: 'delete-confirm', class: 'danger', type: 'button',
        onclick: async () => {
          try {
            await call('/system/functions', { method: 'DELETE', json: { functionName: name, namespace } });
            location.hash = '#/';
          } catch (err) {
            say(err.message, true);
          }
        },
      }, 'Yes, delete'), ' ',
      h('button', { class: 'secondary', type: 'button', onclick: () => box.replaceChildren() }, 'Cancel')),
  }, 'Delete…');
  return h('div', {}, ask, box);
}

/** Renders function `name` of `namespace`; returns what stops its refreshes and log stream. */
export function renderFunction(main, namespace, name) {
  const replicas = h('span', { id: 'fn-replicas' }, '…');
  const message = h('p', { id: 'fn-message', class: 'muted' });
  const say = (text, bad) => {
    message.textContent = text;
    message.className = bad ? 'bad' : 'muted';
  };
  const details = h('div', {}, 'loading…');
  const charts = h('div', { class: 'charts', id: 'charts' });
  const [logs, stopLogs] = logsPanel(name, namespace);
  const qualified = `${name}.${namespace}`;
  main.append(
    h('h1', {}, h('a', { href: '#/' }, 'Functions'), ' / ', h('span', { id: 'fn-name' }, name),
      h('span', { class: 'muted' }, ` · ${namespace} · `), replicas),
    message,
    h('div', { class: 'grid' },
      h('section', { class: 'card' }, h('h2', {}, 'Deployment'), details,
        h('h2', {}, 'URLs'),
        h('dl', { class: 'kv' },
          h('dt', {}, 'Synchronous'), h('dd', { id: 'url-sync' }, `${location.origin}/function/${qualified}`),
          h('dt', {}, 'Asynchronous'), h('dd', { id: 'url-async' }, `${location.origin}/async-function/${qualified}`)),
        h('h2', {}, 'Scale'), scaleControl(name, namespace, say),
        h('h2', {}, 'Delete'), deleteControl(name, namespace, say)),
      h('section', { class: 'card' }, h('h2', {}, 'Invoke'), invokePanel(name, namespace))),
    h('section', { class: 'card' }, h('h2', {}, 'Last 15 minutes'), charts),
    h('section', { class: 'card' }, h('h2', {}, 'Logs'), logs));
  let drawn = false;
  const status = async () => {
    try {
      const fn = await call(`/system/function/${encodeURIComponent(name)}${query({ namespace })}`);
      replicas.textContent = `${fn.availableReplicas}/${fn.replicas} ready`;
      if (!drawn) {
        replace(details, deployment(fn));
        document.getElementById('scale-replicas').value = fn.replicas;
        drawn = true;
      }
    } catch (err) {
      replicas.textContent = err.status === 404 ? 'not found' : 'unknown';
      say(err.message, true);
    }
  };
  const history = async () => {
    try {
      drawCharts(charts, await call(`/system/metrics/history${query({ name, namespace })}`));
    } catch (err) {
      replace(charts, h('p', { class: 'muted' }, `No history: ${err.message}`));
    }
  };
  status();
  history();
  const timers = [setInterval(status, STATUS_MS), setInterval(history, CHARTS_MS)];
  return () => {
    timers.forEach(clearInterval);
    stopLogs();
  };
}
