// Editing a tenant's routes in the browser: the routes in the order they are tried (a
// recipient goes to the first that matches), moved up or down by rewriting that order
// through `PUT /api/v1/tenants/{t}/routes/{r}` with `position`, added or changed in a form
// whose fields show the API's validation problems.
//
// Kept apart from the other editors on purpose: when routes gain more matching fields
// (priority, stop, headers, verdicts), this module is the one place that changes.
'use strict';

import { $, el, fill, describe, api, state } from './lib.js';
import { fieldErrors, clearFieldErrors, splitList, editableTenant } from './forms.js';

// The route as the API's PUT takes it (the name is in the path): every field but the name.
function body(route, position) {
  const b = { ...route };
  delete b.name;
  if (position !== undefined) b.position = position;
  return b;
}

function routePath(tenant, name) {
  return `/tenants/${encodeURIComponent(tenant)}/routes/${encodeURIComponent(name)}`;
}

export function renderRoutes(tenant, config) {
  const routes = (config && config.routes) || [];
  state.routes = routes;
  fill($('routes-body'), routes.map((r, i) => el('tr', { testid: 'route-row', 'data-route': r.name, 'data-position': i },
    el('td', {}, String(i + 1)),
    el('td', {}, r.name),
    el('td', { className: 'answer' }, (r.recipients || []).join(', ')),
    el('td', {}, (r.endpoints || []).join(', ')),
    el('td', { className: 'nowrap' },
      el('button', {
        type: 'button', className: 'small', testid: 'route-up', disabled: i === 0,
        'aria-label': `Move route ${r.name} up`, onclick: () => move(tenant, r, i - 1),
      }, '↑'), ' ',
      el('button', {
        type: 'button', className: 'small', testid: 'route-down', disabled: i === routes.length - 1,
        'aria-label': `Move route ${r.name} down`, onclick: () => move(tenant, r, i + 1),
      }, '↓'), ' ',
      el('button', { type: 'button', className: 'small', testid: 'route-edit', onclick: () => edit(r) }, 'Edit'), ' ',
      el('button', {
        type: 'button', className: 'small', testid: 'route-delete',
        'aria-label': `Delete route ${r.name}`, onclick: () => remove(tenant, r),
      }, 'Delete')))), $('routes-empty'));
}

function outcome(text, ok) {
  const o = $('routes-outcome');
  o.textContent = text;
  o.dataset.state = ok ? 'done' : 'error';
}

async function move(tenant, route, position) {
  try {
    await api(routePath(tenant, route.name), { method: 'PUT', body: body(route, position) });
    outcome(`Route ${route.name} is now number ${position + 1}.`, true);
  } catch (err) {
    outcome(`Moving ${route.name} failed: ${describe(err)}`, false);
  }
  await state.reloadConfig();
}

async function remove(tenant, route) {
  try {
    await api(routePath(tenant, route.name), { method: 'DELETE' });
    outcome(`Route ${route.name} deleted.`, true);
  } catch (err) {
    outcome(`Deleting ${route.name} failed: ${describe(err)}`, false);
  }
  await state.reloadConfig();
}

function edit(route) {
  const form = $('route-form');
  clearFieldErrors(form);
  $('route-name').value = route.name;
  $('route-recipients').value = (route.recipients || []).join(', ');
  $('route-endpoints').value = (route.endpoints || []).join(', ');
  $('route-name').focus();
}

// Saves the form: a new route goes last (move it up afterwards), an existing one keeps its
// place and any field the form does not show.
export async function saveRoute(e) {
  e.preventDefault();
  const form = $('route-form');
  const tenant = editableTenant();
  clearFieldErrors(form);
  if (!tenant) return;
  const name = $('route-name').value.trim();
  if (!name) {
    fieldErrors(form, { field: 'name', detail: 'give the route a name' });
    return;
  }
  const old = (state.routes || []).find((r) => r.name === name) || {};
  const route = {
    ...old, name,
    recipients: splitList($('route-recipients').value),
    endpoints: splitList($('route-endpoints').value),
  };
  try {
    await api(routePath(tenant, name), { method: 'PUT', body: body(route) });
    outcome(`Route ${name} saved.`, true);
    form.reset();
  } catch (err) {
    fieldErrors(form, err.problem || { detail: describe(err) });
    outcome(`Route ${name} not saved: ${describe(err)}`, false);
  }
  await state.reloadConfig();
}
