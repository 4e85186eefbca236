// Asynchronous calls that ran out of attempts: list (refreshed every 5 s) and replay.

import { call } from './api.js';
import { h, replace } from './dom.js';

/** Renders the dead letters page into `main`; returns what stops its refresh. */
export function renderDeadLetters(main) {
  const body = h('tbody', { id: 'dead-letters' });
  const message = h('p', { id: 'dead-letters-message', class: 'muted' });
  const refresh = async () => {
    try {
      const list = (await call('/system/async/dead-letters')) || [];
      replace(body, list.map((d) => h('tr', { 'data-id': d.id },
        h('td', {}, d.id),
        h('td', {}, d.function),
        h('td', {}, `${d.method} ${d.path}`),
        h('td', { class: 'num' }, d.attempts),
        h('td', {}, d.stage),
        h('td', {}, d.reason),
        h('td', {}, d.deadAtMs ? new Date(d.deadAtMs).toLocaleString() : '–'),
        h('td', {}, h('button', {
          type: 'button', class: 'replay',
          onclick: async () => {
            let said;
            try {
              await call(`/system/async/dead-letters/${encodeURIComponent(d.id)}/replay`, { method: 'POST' });
              said = `queued ${d.id} again`;
            } catch (err) {
              said = err.message;
            }
            await refresh();
            message.textContent = said;
          },
        }, 'Replay')))));
      message.textContent = list.length ? '' : 'No dead letters.';
    } catch (err) {
      message.textContent = err.status === 404
        ? 'Asynchronous calls are off on this gateway (--async-queue off).'
        : `Cannot list the dead letters: ${err.message}`;
    }
  };
  main.append(
    h('h1', {}, 'Dead letters'),
    h('section', { class: 'card' },
      h('table', {},
        h('thead', {}, h('tr', {}, ['Call', 'Function', 'Request', 'Attempts', 'Stage', 'Reason', 'Dead since', '']
          .map((t) => h('th', {}, t)))),
        body),
      message));
  refresh();
  const timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}
