// postwire dashboard: a small client of the admin API (docs/api.md), no dependencies.
//
// Data only ever reaches the page through textContent and attributes set one by one (the
// el() helper below); nothing is parsed as HTML. The token lives in sessionStorage and goes
// out only as `Authorization: Bearer …` to the same origin.
'use strict';

import { $, TOKEN_KEY, AUTO_REFRESH_MS, SERIES, state, el, time, ApiError, describe, api, tenant, hooks } from './lib.js';
import { loadStats, loadDlq, syncSelection, replay, loadEndpoints, loadPlugins } from './views.js';
import { loadDeliveries, reloadDetail, resend } from './timeline.js';
import { loadConfig, loadAudit, saveEndpoint, addDomain } from './config.js';
import { saveRoute } from './routes.js';

hooks.unauthorized = (message) => signOut(message);
// After a configuration change: the editors, the audit view and endpoint health again.
state.reloadConfig = () => Promise.allSettled([loadConfig(), loadAudit(), loadEndpoints()]);

// --- session -------------------------------------------------------------------------------

async function signIn(token, { quiet = false } = {}) {
  const form = $('login-form');
  const error = $('login-error');
  error.hidden = true;
  error.textContent = '';
  $('login-button').disabled = true;
  try {
    const who = await api('/whoami', { token });
    if (!who || typeof who !== 'object') throw new ApiError(0, 'Unexpected answer from /whoami', '');
    state.token = token;
    state.whoami = who;
    sessionStorage.setItem(TOKEN_KEY, token);
    form.reset();
    await loadTenants();
    showDashboard();
    await refreshAll();
  } catch (err) {
    state.token = null;
    state.whoami = null;
    sessionStorage.removeItem(TOKEN_KEY);
    if (!quiet || !(err instanceof ApiError && err.status === 401)) {
      error.textContent = `Sign-in failed: ${describe(err)}`;
      error.hidden = false;
    }
    showLogin();
  } finally {
    $('login-button').disabled = false;
  }
}

function signOut(message) {
  state.token = null;
  state.whoami = null;
  state.tenants = [];
  state.deadLetters = [];
  state.selected.clear();
  state.detailId = null;
  state.generation = {};
  sessionStorage.removeItem(TOKEN_KEY);
  stopAutoRefresh();
  $('auto-refresh').checked = false;
  clearData();
  showLogin();
  const error = $('login-error');
  error.textContent = message || '';
  error.hidden = !message;
}

function showLogin() {
  $('dashboard').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  $('token').focus();
}

function showDashboard() {
  const who = state.whoami;
  const scope = who.global ? 'global token, every tenant'
    : `tenants: ${(who.tenants || []).join(', ') || 'none'}`;
  $('whoami').textContent = `Signed in as ${who.token || 'token'} (${scope})`;
  $('login').hidden = true;
  $('session').hidden = false;
  $('dashboard').hidden = false;
}

function clearData() {
  for (const id of ['dlq-body', 'deliveries-body', 'endpoints-body', 'plugins-body', 'uploaded-body', 'charts',
    'detail-attempts', 'detail-headers', 'detail-summary', 'tenant', 'routes-body', 'config-endpoints-body',
    'domains-body', 'audit-body']) {
    $(id).replaceChildren();
  }
  for (const [key] of SERIES.concat([['dead']])) {
    const dd = $(`count-${key === 'dlq_depth' ? 'dlq' : key}`);
    if (dd) dd.textContent = '–';
  }
  $('detail-payload').textContent = '';
  $('detail').hidden = true;
  $('dlq-outcome').textContent = '';
  $('whoami').textContent = '';
  $('updated').textContent = '';
  $('search').value = '';
  $('resend-outcome').textContent = '';
  $('config-revision').textContent = '';
  // Nothing of the previous session stays in the editors.
  for (const id of ['route-form', 'endpoint-form', 'domain-form', 'search-form']) $(id).reset();
  for (const id of ['routes-outcome', 'endpoint-form-outcome', 'recover-outcome']) $(id).textContent = '';
  document.querySelectorAll('.field-error, .form-error').forEach((e) => { e.textContent = ''; e.hidden = true; });
  state.config = null;
  state.detail = null;
}

async function loadTenants() {
  const who = state.whoami;
  let names = Array.isArray(who.tenants) ? who.tenants.map(String) : [];
  if (who.global) {
    try {
      const list = await api('/tenants');
      names = names.concat((list.tenants || []).map((t) => String(t.name)));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      // the picker still has whoami's tenants
    }
  }
  state.tenants = [...new Set(names)].sort();
  const select = $('tenant');
  const options = state.tenants.map((name) => el('option', { value: name }, name));
  if (who.global) options.unshift(el('option', { value: '' }, 'all tenants'));
  select.replaceChildren(...options);
  if (state.tenants.length) select.value = state.tenants[0];
}

// --- loading --------------------------------------------------------------------------------

async function refreshAll() {
  if (!state.token) return;
  $('refresh').disabled = true;
  try {
    await Promise.allSettled([loadStats(), loadDlq(), loadDeliveries(), loadEndpoints(), loadPlugins(),
      reloadDetail(), loadConfig(), loadAudit()]);
    if (state.token) $('updated').textContent = `Updated ${time(new Date().toISOString())}`;
  } finally {
    $('refresh').disabled = false;
  }
}

// --- auto refresh and wiring -------------------------------------------------------------------

function stopAutoRefresh() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

function wire() {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token').value.trim();
    if (token.length < 16) {
      const error = $('login-error');
      error.textContent = 'A token has at least 16 characters.';
      error.hidden = false;
      return;
    }
    signIn(token);
  });
  $('logout').addEventListener('click', () => signOut(''));
  $('refresh').addEventListener('click', () => refreshAll());
  $('tenant').addEventListener('change', () => {
    state.selected.clear();
    $('detail').hidden = true;
    refreshAll();
  });
  $('hours').addEventListener('change', () => loadStats().catch(() => {}));
  $('status').addEventListener('change', () => loadDeliveries().catch(() => {}));
  $('limit').addEventListener('change', () => loadDeliveries().catch(() => {}));
  $('search-since').addEventListener('change', () => loadDeliveries().catch(() => {}));
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    loadDeliveries().catch(() => {});
  });
  $('resend').addEventListener('click', () => resend());
  $('route-form').addEventListener('submit', (e) => saveRoute(e));
  $('endpoint-form').addEventListener('submit', (e) => saveEndpoint(e));
  $('domain-form').addEventListener('submit', (e) => addDomain(e));
  $('auto-refresh').addEventListener('change', (e) => {
    stopAutoRefresh();
    if (e.target.checked) state.timer = setInterval(refreshAll, AUTO_REFRESH_MS);
  });
  $('replay-selected').addEventListener('click', () => {
    if (state.selected.size) replay([...state.selected].sort((a, b) => a - b));
  });
  $('dlq-all').addEventListener('change', (e) => {
    state.selected = new Set(e.target.checked ? state.deadLetters.map((d) => Number(d.seq)) : []);
    document.querySelectorAll('[data-testid="dlq-select"]').forEach((box) => { box.checked = e.target.checked; });
    syncSelection();
  });
  $('detail-close').addEventListener('click', () => {
    state.detailId = null;
    $('detail').hidden = true;
  });
}

document.addEventListener('DOMContentLoaded', () => {
  wire();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved, { quiet: true });
  else showLogin();
});
