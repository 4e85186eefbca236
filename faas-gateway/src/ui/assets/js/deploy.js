// The deploy form: the API's 400 message is shown beside the field it names.

import { call, ApiError } from './api.js';
import { h, replace, parsePairs } from './dom.js';
import { namespaces } from './list.js';

const MODES = ['', 'streaming', 'serializing', 'http', 'static'];
const SCALING_LABELS = [
  'com.openfaas.scale.min=1',
  'com.openfaas.scale.max=20',
  'com.openfaas.scale.target=50',
  'com.openfaas.scale.zero=true',
  'com.openfaas.scale.zero-duration=15m',
];

// Which field a message names: the earliest of these words in it wins.
const FIELD_WORDS = [
  ['mode', ['envVars.mode']],
  ['labels', ['labels']],
  ['annotations', ['annotations']],
  ['env', ['envVars', 'env var']],
  ['process', ['envProcess', 'fprocess']],
  ['service', ['service', 'function name']],
  ['image', ['image']],
  ['secrets', ['secret']],
  ['limits', ['limits']],
  ['namespace', ['namespace']],
];

/** The form field a server message is about, if it names one. */
export function fieldOf(message) {
  let best = null;
  for (const [field, words] of FIELD_WORDS) {
    for (const word of words) {
      const at = message.indexOf(word);
      if (at >= 0 && (!best || at < best.at || (at === best.at && word.length > best.len))) {
        best = { field, at, len: word.length };
      }
    }
  }
  return best ? best.field : null;
}

function field(key, label, input, hint) {
  return h('div', { class: 'field', id: `field-${key}` },
    h('label', { for: input.id }, label), input,
    hint ? h('span', { class: 'muted' }, hint) : null,
    h('span', { class: 'field-error', id: `error-${key}` }));
}

/** Renders the form into `main`. */
export function renderDeploy(main) {
  const input = (key, attrs = {}) => h('input', { id: `deploy-${key}`, ...attrs });
  const service = input('service', { required: true, placeholder: 'my-function' });
  const namespace = h('select', { id: 'deploy-namespace' });
  const image = input('image', { value: 'local' });
  const process = input('process', { placeholder: 'e.g. cat, sha512sum, python3 /path/to/handler.py' });
  const mode = h('select', { id: 'deploy-mode' }, MODES.map((m) => h('option', { value: m }, m || '(default)')));
  const env = h('textarea', { id: 'deploy-env', placeholder: 'KEY=value' });
  const labels = h('textarea', { id: 'deploy-labels', placeholder: 'key=value' });
  const annotations = h('textarea', { id: 'deploy-annotations', placeholder: 'key=value' });
  const secrets = h('div', { id: 'deploy-secrets' }, h('span', { class: 'muted' }, 'loading…'));
  const memory = input('memory', { placeholder: '128Mi' });
  const cpu = input('cpu', { placeholder: '500m' });
  const formError = h('p', { class: 'bad', id: 'deploy-error' });
  const offer = h('div', {}, SCALING_LABELS.map((l) => h('button', {
    type: 'button', class: 'secondary label-offer',
    onclick: () => {
      const key = l.split('=')[0];
      const kept = labels.value.split('\n').filter((line) => line.trim() && !line.startsWith(`${key}=`));
      labels.value = [...kept, l].join('\n');
    },
  }, l.split('=')[0].replace('com.openfaas.', ''))));
  const form = h('form', { id: 'deploy-form' },
    h('div', { class: 'grid' },
      h('div', {},
        field('service', 'Name', service),
        field('namespace', 'Namespace', namespace),
        field('image', 'Image', image, 'on the local provider: recorded, not used'),
        field('process', 'Process (fprocess)', process),
        field('mode', 'Mode', mode),
        field('limits', 'Limits', h('div', { class: 'row' }, h('label', {}, 'memory', memory), h('label', {}, 'cpu', cpu)))),
      h('div', {},
        field('env', 'Environment (KEY=value a line)', env),
        field('labels', 'Labels (key=value a line); add a scaling label:', labels),
        offer,
        field('annotations', 'Annotations (key=value a line)', annotations),
        field('secrets', 'Secrets', secrets))),
    formError,
    h('button', { id: 'deploy-submit', type: 'submit' }, 'Deploy'));
  main.append(h('h1', {}, 'Deploy a function'), h('section', { class: 'card' }, form));

  namespaces().then((names) => replace(namespace, names.map((n) => h('option', { value: n }, n))));
  call('/system/secrets')
    .then((list) => replace(secrets, (list || []).length
      ? list.map((s) => h('label', { class: 'tag' }, h('input', { type: 'checkbox', value: s.name, class: 'secret-pick' }), ` ${s.name}`))
      : h('span', { class: 'muted' }, 'no secrets (create them under Secrets)')))
    .catch((err) => replace(secrets, h('span', { class: 'muted' }, `secrets unavailable: ${err.message}`)));

  const showError = (key, message) => {
    const slot = key && document.getElementById(`error-${key}`);
    if (slot) slot.textContent = message;
    else formError.textContent = message;
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    form.querySelectorAll('.field-error').forEach((e) => { e.textContent = ''; });
    formError.textContent = '';
    let spec;
    try {
      spec = {
        service: service.value.trim(),
        image: image.value.trim(),
        namespace: namespace.value,
        envProcess: process.value.trim(),
        envVars: parsePairs(env.value, 'environment'),
        labels: parsePairs(labels.value, 'labels'),
        annotations: parsePairs(annotations.value, 'annotations'),
        secrets: [...secrets.querySelectorAll('.secret-pick:checked')].map((c) => c.value),
      };
    } catch (err) {
      showError(fieldOf(err.message.replace('environment', 'envVars')), err.message);
      return;
    }
    if (mode.value) spec.envVars.mode = mode.value;
    if (memory.value.trim() || cpu.value.trim()) spec.limits = { memory: memory.value.trim(), cpu: cpu.value.trim() };
    try {
      await call('/system/functions', { method: 'POST', json: spec });
      location.hash = `#/fn/${encodeURIComponent(spec.namespace)}/${encodeURIComponent(spec.service)}`;
    } catch (err) {
      const message = err instanceof ApiError ? err.message : String(err);
      showError(err.status === 400 || err.status === 409 ? fieldOf(message) : null, message);
    }
  });
}
