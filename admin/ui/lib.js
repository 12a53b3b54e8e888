// Shared by the dashboard's modules: constants, state, DOM helpers (text only, never
// HTML) and the API client.
'use strict';

// Set by app.js: what to do when the token stops being accepted.
export const hooks = { unauthorized: () => {} };

export const TOKEN_KEY = 'postwire.token';
export const API = '/api/v1';
export const AUTO_REFRESH_MS = 10000;
export const REPLAY_POLL_MS = 1000;
export const REPLAY_POLL_TRIES = 60;
// Header values shown as «hidden» even if the API ever let one through.
export const SECRET_HEADERS = /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key)$/i;
export const SERIES = [
  ['received', 'Received'],
  ['delivered', 'Delivered'],
  ['failed', 'Failed attempts'],
  ['dlq_depth', 'DLQ depth'],
];

export const state = {
  token: null,
  whoami: null,
  tenants: [],
  deadLetters: [],
  selected: new Set(), // seqs ticked in the DLQ table
  detailId: null,
  timer: null,
  generation: {}, // per section: drops answers that arrive after a newer request
};

export const $ = (id) => document.getElementById(id);
export const byTestId = (root, id) => root.querySelector(`[data-testid="${id}"]`);

// --- DOM helpers: text only, never HTML -------------------------------------------------

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'className') node.className = value;
    else if (key === 'testid') node.dataset.testid = value;
    else if (key === 'checked' || key === 'disabled') node[key] = Boolean(value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function svg(tag, attrs, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  append(node, children);
  return node;
}

export function fill(tbody, rows, empty) {
  tbody.replaceChildren(...rows);
  if (empty) empty.hidden = rows.length > 0;
}

export function showError(section, err) {
  const box = byTestId(document, `${section}-error`);
  if (!box) return;
  if (!err) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.textContent = describe(err);
  box.hidden = false;
}

export function time(value) {
  if (!value) return '';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}

export function timeCell(value) {
  return el('td', { className: 'nowrap' }, el('time', { datetime: value || undefined }, time(value)));
}

export function badge(text, kind) {
  return el('span', { className: `badge badge-${kind || text}`, testid: 'status' }, text);
}

// --- the API ------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, title, detail, problem) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.problem = problem;
  }
}

export function describe(err) {
  if (err instanceof ApiError) {
    const head = err.status ? `${err.title} (HTTP ${err.status})` : err.title;
    return err.detail ? `${head}: ${err.detail}` : head;
  }
  return String((err && err.message) || err);
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') q.set(key, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export async function api(path, { method = 'GET', body, token = state.token } = {}) {
  const headers = { Accept: 'application/json, application/problem+json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
  } catch (e) {
    throw new ApiError(0, 'The admin API cannot be reached', e.message);
  }
  const type = (res.headers.get('content-type') || '').toLowerCase();
  const text = res.status === 204 ? '' : await res.text();
  let data = null;
  if (text && type.includes('json')) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new ApiError(res.status, 'The admin API answered malformed JSON', e.message);
    }
  }
  if (!res.ok) {
    const p = data && typeof data === 'object' ? data : {};
    const err = new ApiError(res.status, p.title || res.statusText || 'Error',
      p.detail || p.error || '', p);
    if (res.status === 401 && token === state.token && state.whoami) {
      hooks.unauthorized('The token is no longer accepted. Sign in again.');
    }
    throw err;
  }
  if (res.status !== 204 && data === null) {
    throw new ApiError(res.status, 'The admin API did not answer JSON', `${method} ${API}${path}`);
  }
  return data;
}

export function fresh(section) {
  const n = (state.generation[section] || 0) + 1;
  state.generation[section] = n;
  return () => state.generation[section] === n;
}

export const tenant = () => $('tenant').value;

export async function section(name, load) {
  const current = fresh(name);
  try {
    const data = await load();
    if (!current() || !state.token) return;
    showError(name, null);
    return data;
  } catch (err) {
    if (current() && state.token) showError(name, err);
    throw err;
  }
}
