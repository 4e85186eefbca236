// Building the page: every piece of text goes in as a text node, never as
// HTML, so names, labels, logs and answers can never become markup.

/** Creates `tag` with attributes (`on*` functions become listeners) and children. */
export function h(tag, attrs = {}, ...children) {
  const svg = ['svg', 'polyline', 'line', 'text', 'g', 'rect', 'circle'].includes(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' && !svg) el.value = value;
    else if (key === 'checked') el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** "12 s ago" style text for a time in ms since the epoch. */
export function ago(ms) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** A number of milliseconds, or a dash. */
export function millis(ms) {
  return ms === null || ms === undefined ? '–' : `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`;
}

/** Parses `key=value` lines; throws naming the first bad line. */
export function parsePairs(text, what) {
  const out = {};
  text.split('\n').map((l) => l.trim()).filter(Boolean).forEach((line, i) => {
    const eq = line.indexOf('=');
    if (eq < 1) throw new Error(`${what} line ${i + 1} is not key=value: ${line}`);
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  });
  return out;
}

/** A key/value list as a definition list, or a dash. */
export function pairs(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h('span', { class: 'muted' }, '–');
  return h('div', {}, entries.map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`)));
}
