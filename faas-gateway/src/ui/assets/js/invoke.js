// The invoke panel: any method, path, query, headers and body (text or a
// file); shows the answer's status, headers, time and body, or offers a
// binary answer as a download.

import { h, replace } from './dom.js';

const METHODS = ['POST', 'GET', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
const TEXTUAL = /^(text\/|application\/(json|xml|javascript|x-ndjson|x-www-form-urlencoded)|[^;]*\+(json|xml))/;

function headerLines(text) {
  const headers = new Headers();
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const colon = line.indexOf(':');
    if (colon < 1) throw new Error(`header line is not "Name: value": ${line}`);
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** Decodes `bytes` as text when the answer is textual and valid UTF-8; else null. */
function asText(bytes, type) {
  if (type && !TEXTUAL.test(type)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** The panel for function `name` in `namespace`. */
export function invokePanel(name, namespace) {
  const method = h('select', { id: 'invoke-method' }, METHODS.map((m) => h('option', { value: m }, m)));
  const path = h('input', { id: 'invoke-path', value: '/', placeholder: '/path' });
  const q = h('input', { id: 'invoke-query', placeholder: 'a=1&b=2' });
  const headers = h('textarea', { id: 'invoke-headers', placeholder: 'Content-Type: text/plain' });
  const bodyText = h('textarea', { id: 'invoke-body' });
  const file = h('input', { id: 'invoke-file', type: 'file' });
  const result = h('div', { id: 'invoke-result' });
  const send = h('button', { id: 'invoke-send', type: 'submit' }, 'Invoke');
  const form = h('form', {},
    h('div', { class: 'row' },
      h('label', { class: 'fixed' }, 'Method', method),
      h('label', {}, 'Path', path),
      h('label', {}, 'Query', q)),
    h('label', {}, 'Headers (one "Name: value" a line)', headers),
    h('label', {}, 'Body (text)', bodyText),
    h('label', {}, 'or a file as the body', file),
    h('p', {}, send),
    result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    let init;
    try {
      init = { method: method.value, headers: headerLines(headers.value) };
    } catch (err) {
      replace(result, h('p', { class: 'bad' }, err.message));
      return;
    }
    if (!['GET', 'HEAD'].includes(method.value)) init.body = file.files.length ? file.files[0] : bodyText.value;
    const suffix = path.value.startsWith('/') ? path.value : `/${path.value}`;
    const url = new URL(`/function/${name}.${namespace}${suffix}`, location.origin);
    if (q.value.trim()) url.search = q.value.trim().replace(/^\?/, '');
    replace(result, h('p', { class: 'muted' }, 'calling…'));
    const started = performance.now();
    try {
      const response = await fetch(url, init);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const took = performance.now() - started;
      const type = response.headers.get('content-type') || '';
      const text = asText(bytes, type);
      const lines = [...response.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
      let shown;
      if (text !== null) {
        shown = h('pre', { id: 'invoke-answer' }, text);
      } else {
        const href = URL.createObjectURL(new Blob([bytes], { type: type || 'application/octet-stream' }));
        shown = h('p', {}, h('a', { id: 'invoke-download', href, download: `${name}-answer.bin` },
          `Download the answer (${bytes.length} bytes, ${type || 'no content type'})`));
      }
      replace(result,
        h('p', {},
          h('strong', { id: 'invoke-status', class: response.ok ? 'ok' : 'bad' }, `${response.status} ${response.statusText}`),
          ' in ', h('span', { id: 'invoke-time' }, `${took.toFixed(1)} ms`), `, ${bytes.length} bytes`),
        h('pre', { id: 'invoke-response-headers' }, lines),
        shown);
    } catch (err) {
      replace(result, h('p', { class: 'bad', id: 'invoke-status' }, `The call failed: ${err.message}`));
    }
  });
  return form;
}
