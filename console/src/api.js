// The one way the console talks to fnhub: JSON over /api/v1 with the session cookie, and the
// CSRF token on every state-changing request. Failures become ApiError with the server's
// {"error": {"code", "message", ...}} fields.
export const API = '/api/v1';

let csrfToken = null;
let onUnauthorized = () => {};

export function setCsrfToken(token) {
  csrfToken = token;
}

export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || 'error';
    this.info = error;
  }
}

export async function request(method, path, body, { signal, quiet401 = false, keepalive = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      keepalive, // a save sent as the page goes still arrives
    });
  } catch (exc) {
    if (exc.name === 'AbortError') throw exc;
    throw new ApiError(0, { code: 'network', message: `cannot reach the server (${exc.message})` });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: { code: 'bad_response', message: text.slice(0, 300) } };
    }
  }
  if (!response.ok) {
    if (response.status === 401 && !quiet401) onUnauthorized();
    const error = (data && data.error) || (data && data.detail) || {};
    if (typeof error === 'string') throw new ApiError(response.status, { message: error });
    if (error.error && !error.code) error.code = error.error; // the cron area's shape
    if (!error.message) error.message = `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, error);
  }
  return data;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body ?? {}, opts);
export const put = (path, body, opts) => request('PUT', path, body, opts);
export const patch = (path, body, opts) => request('PATCH', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;
