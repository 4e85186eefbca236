// Calls to the gateway's API: the credentials when basic auth is on, and
// the banner when the gateway cannot be reached or answers 5xx.

const KEY = 'faas-rs-auth';
let asking = null;

/** An API call that did not succeed; `status` 0 when nothing answered. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The Authorization header to send, if the user signed in. */
export function authHeaders() {
  const token = sessionStorage.getItem(KEY);
  return token ? { Authorization: `Basic ${token}` } : {};
}

/** Shows `message` in the banner at the top of every page. */
export function banner(message) {
  const el = document.getElementById('banner');
  el.textContent = message;
  el.hidden = false;
}

/** Hides the banner. */
export function clearBanner() {
  document.getElementById('banner').hidden = true;
}

function askCredentials() {
  if (asking) return asking;
  const form = document.getElementById('login');
  form.hidden = false;
  asking = new Promise((resolve) => {
    form.onsubmit = (event) => {
      event.preventDefault();
      const user = document.getElementById('login-user').value;
      const password = document.getElementById('login-password').value;
      const bytes = new TextEncoder().encode(`${user}:${password}`);
      sessionStorage.setItem(KEY, btoa(String.fromCharCode(...bytes)));
      form.hidden = true;
      asking = null;
      resolve();
    };
  });
  return asking;
}

/** fetch() on the gateway with credentials, banner and sign-in; the Response. */
export async function request(path, options = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { ...(options.headers || {}), ...authHeaders() };
    let response;
    try {
      // `omit`: the browser neither adds cached credentials nor shows its
      // own prompt on a 401; the page asks and sends them itself.
      response = await fetch(new URL(path, location.origin), { ...options, headers, credentials: 'omit' });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      banner(`Cannot reach the gateway (${err.message}); retrying.`);
      throw new ApiError(0, `cannot reach the gateway: ${err.message}`);
    }
    if (response.status === 401 && attempt < 3) {
      await askCredentials();
      continue;
    }
    if (response.status >= 500) {
      const text = (await response.clone().text()).trim();
      banner(`The gateway answered ${response.status} to ${options.method || 'GET'} ${path}: ${text}`);
    } else {
      clearBanner();
    }
    return response;
  }
}

/** An API call answering JSON (or nothing); throws ApiError with the gateway's message. */
export async function call(path, options = {}) {
  const init = { ...options };
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    init.headers = { 'Content-Type': 'application/json', ...(options.headers || {}) };
    delete init.json;
  }
  const response = await request(path, init);
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, text.trim() || response.statusText);
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `?key=value&...` from an object, skipping empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
