// Editing a tenant in the browser: endpoints (URL, signing schemes, secret — write-only —,
// rate limits, enabled) and domains, each saved through its own admin API call whose
// validation problems show next to the field; routes are in routes.js; the audit view
// lists who changed what.
'use strict';

import { $, el, fill, time, describe, api, query, state, section, tenant } from './lib.js';
import { fieldErrors, clearFieldErrors, editableTenant } from './forms.js';
import { renderRoutes } from './routes.js';

const HIDDEN = '********';

export async function loadConfig() {
  const t = editableTenant();
  $('config-pick').hidden = Boolean(t);
  $('config-body').hidden = !t;
  if (!t) return;
  const doc = await section('config', () => api(`/tenants/${encodeURIComponent(t)}`));
  if (!doc || editableTenant() !== t) return;
  state.config = doc.config || {};
  $('config-revision').textContent = `revision ${doc.revision}, ${doc.source}, changed ${time(doc.updated_at)} by ${doc.updated_by || '?'}`;
  renderRoutes(t, state.config);
  renderEndpoints(t, state.config);
  renderDomains(t, state.config);
}

// --- endpoints ---------------------------------------------------------------------------------

function renderEndpoints(t, config) {
  const eps = Object.entries(config.endpoints || {});
  fill($('config-endpoints-body'), eps.map(([name, e]) => el('tr', { testid: 'config-endpoint-row', 'data-endpoint': name },
    el('td', {}, name), el('td', { className: 'answer' }, e.url || ''),
    el('td', {}, [(e.secret || e.secret_env) ? 'standard webhooks' : '', ...(e.signing || []).map((s) => s.scheme)].filter(Boolean).join(', ')),
    el('td', {}, [e.rate_per_sec ? `${e.rate_per_sec}/s` : '', e.concurrency ? `${e.concurrency} at once` : ''].filter(Boolean).join(', ') || 'defaults'),
    el('td', {}, el('button', { type: 'button', className: 'small', testid: 'endpoint-edit', onclick: () => editEndpoint(name, e) }, 'Edit')))),
  $('config-endpoints-empty'));
}

function editEndpoint(name, e) {
  const form = $('endpoint-form');
  clearFieldErrors(form);
  $('ep-name').value = name;
  $('ep-url').value = e.url || '';
  $('ep-secret').value = '';
  $('ep-secret').placeholder = e.secret ? 'set (leave empty to keep it)' : 'none';
  $('ep-signing').value = JSON.stringify(e.signing || [], null, 1);
  $('ep-rate').value = e.rate_per_sec ?? '';
  $('ep-concurrency').value = e.concurrency ?? '';
  $('ep-allow-http').checked = Boolean(e.allow_http);
  const health = document.querySelector(`[data-testid="endpoint-row"][data-tenant="${editableTenant()}"][data-endpoint="${name}"]`);
  $('ep-enabled').checked = !health || health.dataset.health !== 'disabled';
  $('ep-name').focus();
}

function number(input, form, field) {
  const v = input.value.trim();
  if (v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    fieldErrors(form, { field, detail: 'a positive number, or empty for the default' });
    throw new Error('invalid');
  }
  return n;
}

export async function saveEndpoint(ev) {
  ev.preventDefault();
  const form = $('endpoint-form');
  const t = editableTenant();
  clearFieldErrors(form);
  if (!t) return;
  const name = $('ep-name').value.trim();
  const old = (state.config.endpoints || {})[name] || {};
  let signing;
  let rate;
  let concurrency;
  try {
    signing = JSON.parse($('ep-signing').value.trim() || '[]');
    if (!Array.isArray(signing)) throw new Error('a JSON list');
  } catch (err) {
    fieldErrors(form, { field: 'signing', detail: `signing schemes: a JSON list (${err.message})` });
    return;
  }
  try {
    rate = number($('ep-rate'), form, 'rate_per_sec');
    concurrency = number($('ep-concurrency'), form, 'concurrency');
  } catch {
    return;
  }
  // Secrets are write-only: an empty box keeps the stored one (sent back as «hidden»).
  const secret = $('ep-secret').value.trim();
  const body = { ...old, url: $('ep-url').value.trim(), signing, allow_http: $('ep-allow-http').checked };
  if (secret) body.secret = secret;
  else if (old.secret) body.secret = HIDDEN;
  else delete body.secret;
  if (rate === undefined) delete body.rate_per_sec; else body.rate_per_sec = rate;
  if (concurrency === undefined) delete body.concurrency; else body.concurrency = Math.round(concurrency);
  const out = $('endpoint-form-outcome');
  const path = `/tenants/${encodeURIComponent(t)}/endpoints/${encodeURIComponent(name)}`;
  try {
    await api(path, { method: 'PUT', body });
    const health = document.querySelector(`[data-testid="endpoint-row"][data-tenant="${t}"][data-endpoint="${name}"]`);
    const disabled = health && health.dataset.health === 'disabled';
    if ($('ep-enabled').checked === Boolean(disabled)) {
      await api(`${path}/${$('ep-enabled').checked ? 'enable' : 'disable'}`, { method: 'POST' });
    }
    out.textContent = `Endpoint ${name} saved.`;
    out.dataset.state = 'done';
    $('ep-secret').value = '';
  } catch (err) {
    fieldErrors(form, err.problem || { detail: describe(err) });
    out.textContent = `Endpoint ${name} not saved: ${describe(err)}`;
    out.dataset.state = 'error';
  }
  await state.reloadConfig();
}

// --- domains ------------------------------------------------------------------------------------

function renderDomains(t, config) {
  fill($('domains-body'), (config.domains || []).map((d) => el('li', { testid: 'domain-row', 'data-domain': d },
    d, ' ', el('button', {
      type: 'button', className: 'small', testid: 'domain-remove', 'aria-label': `Remove domain ${d}`,
      onclick: () => domain(t, d, 'DELETE'),
    }, 'Remove'))));
}

async function domain(t, d, method) {
  const form = $('domain-form');
  clearFieldErrors(form);
  try {
    await api(`/tenants/${encodeURIComponent(t)}/domains/${encodeURIComponent(d)}`, { method });
    form.reset();
  } catch (err) {
    fieldErrors(form, err.problem || { detail: describe(err) });
  }
  await state.reloadConfig();
}

export function addDomain(ev) {
  ev.preventDefault();
  const t = editableTenant();
  const d = $('domain-name').value.trim();
  if (t && d) domain(t, d, 'PUT');
}

// --- audit ------------------------------------------------------------------------------------

export async function loadAudit() {
  const data = await section('audit', () => api(`/audit${query({ tenant: tenant() })}`));
  if (!data) return;
  const rows = (data.changes || []).slice().reverse().slice(0, 50);
  fill($('audit-body'), rows.map((c) => el('tr', { testid: 'audit-row' },
    el('td', { className: 'nowrap' }, time(c.at)), el('td', {}, c.by || ''), el('td', {}, c.tenant || ''),
    el('td', {}, c.change || ''), el('td', { className: 'muted' }, c.revision ? `revision ${c.revision}` : ''))), $('audit-empty'));
}
