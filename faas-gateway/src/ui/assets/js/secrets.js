// Secrets: names only. Values go from this form to the gateway, never back.

import { call, query } from './api.js';
import { h, replace } from './dom.js';
import { namespaces } from './list.js';

/** Renders the secrets page into `main`. */
export function renderSecrets(main) {
  const select = h('select', { id: 'secrets-namespace' });
  const body = h('tbody', { id: 'secrets' });
  const message = h('p', { id: 'secrets-message', class: 'muted' });
  const say = (text, bad) => {
    message.textContent = text;
    message.className = bad ? 'bad' : 'muted';
  };
  const name = h('input', { id: 'secret-name', placeholder: 'name', required: true });
  const value = h('input', { id: 'secret-value', type: 'password', placeholder: 'value', autocomplete: 'off' });
  const refresh = async () => {
    try {
      const list = await call(`/system/secrets${query({ namespace: select.value })}`);
      replace(body, (list || []).map((s) => h('tr', { 'data-secret': s.name },
        h('td', {}, s.name),
        h('td', {},
          h('button', { type: 'button', class: 'secondary', onclick: () => { name.value = s.name; value.focus(); } }, 'Set a new value'),
          ' ',
          h('button', {
            type: 'button', class: 'danger secret-delete',
            onclick: async (event) => {
              if (event.target.dataset.armed !== 'yes') {
                event.target.dataset.armed = 'yes';
                event.target.textContent = `Really delete ${s.name}?`;
                return;
              }
              try {
                await call('/system/secrets', { method: 'DELETE', json: { name: s.name, namespace: select.value } });
                say(`deleted ${s.name}`);
              } catch (err) {
                say(err.message, true);
              }
              refresh();
            },
          }, 'Delete')))));
    } catch (err) {
      say(`Cannot list the secrets: ${err.message}`, true);
    }
  };
  const save = async (event) => {
    event.preventDefault();
    const exists = [...body.querySelectorAll('tr')].some((tr) => tr.dataset.secret === name.value.trim());
    const spec = { name: name.value.trim(), value: value.value, namespace: select.value };
    try {
      await call('/system/secrets', { method: exists ? 'PUT' : 'POST', json: spec });
      say(`${exists ? 'updated' : 'created'} ${spec.name}`);
      value.value = '';
    } catch (err) {
      say(err.message, true);
    }
    refresh();
  };
  main.append(
    h('h1', {}, 'Secrets'),
    h('section', { class: 'card' },
      h('label', {}, 'Namespace', select),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, ''))), body),
      h('h2', {}, 'Create or update'),
      h('form', { class: 'row', onsubmit: save }, name, value, h('button', { id: 'secret-save', class: 'fixed', type: 'submit' }, 'Save')),
      message));
  select.addEventListener('change', refresh);
  namespaces().then((names) => {
    replace(select, names.map((n) => h('option', { value: n }, n)));
    refresh();
  });
}
