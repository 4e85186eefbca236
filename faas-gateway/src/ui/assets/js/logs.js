// Logs following live: the /system/logs stream, one JSON message a line.

import { request, query } from './api.js';
import { h } from './dom.js';

const MAX_LINES = 500;

/** Follows the logs of `name` into a panel; returns [panel, stop]. */
export function logsPanel(name, namespace) {
  const out = h('pre', { id: 'logs', class: 'logs' });
  const state = h('span', { class: 'muted', id: 'logs-state' }, 'connecting…');
  const panel = h('div', {}, state, out);
  let controller = null;
  let retry = null;
  let stopped = false;
  const line = (message) => {
    const at = message.timestamp ? new Date(message.timestamp).toLocaleTimeString() : '';
    out.append(h('div', { class: 'logline' }, `${at} ${message.instance || ''} ${message.text}`));
    while (out.childNodes.length > MAX_LINES) out.firstChild.remove();
    out.scrollTop = out.scrollHeight;
  };
  const follow = async () => {
    controller = new AbortController();
    try {
      const response = await request(`/system/logs${query({ name, namespace, follow: 'true', tail: 50 })}`,
        { signal: controller.signal });
      if (!response.ok) throw new Error(`${response.status}: ${(await response.text()).trim()}`);
      state.textContent = 'following';
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let pending = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        pending += decoder.decode(value, { stream: true });
        const lines = pending.split('\n');
        pending = lines.pop();
        for (const text of lines.filter((l) => l.trim())) {
          try {
            line(JSON.parse(text));
          } catch {
            line({ text });
          }
        }
      }
      state.textContent = 'the log stream ended; reconnecting';
    } catch (err) {
      if (stopped) return;
      state.textContent = `logs unavailable (${err.message}); retrying`;
    }
    if (!stopped) retry = setTimeout(follow, 3000);
  };
  follow();
  return [panel, () => {
    stopped = true;
    clearTimeout(retry);
    if (controller) controller.abort();
  }];
}
