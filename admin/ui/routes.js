// Editing a tenant's routes in the browser: the routes in the order they are tried (by
// `priority`, then list position; a matching route with `stop` ends the search), moved up
// or down with `PUT /api/v1/tenants/{t}/routes/{r}` and `before` (the route takes the place
// and priority of the one it goes before), added or changed in a form whose fields show the
// API's validation problems — a route that an earlier catch-all would shadow is refused with
// a problem naming that route, shown under the form.
'use strict';

import { $, el, fill, describe, api, state } from './lib.js';
import { fieldErrors, clearFieldErrors, splitList, editableTenant } from './forms.js';

// The route as the API's PUT takes it (the name is in the path): every field but the name.
function body(route, before) {
  const b = { ...route };
  delete b.name;
  delete b.shadowed_by;
  delete b.position;
  if (before !== undefined) {
    b.before = before;
    delete b.priority;
  }
  return b;
}

// The order the routes are tried in: by priority (lower first), then as listed.
function tried(routes) {
  return routes.map((r, i) => [r, i])
    .sort((a, b) => (a[0].priority || 0) - (b[0].priority || 0) || a[1] - b[1])
    .map(([r]) => r);
}

function routePath(tenant, name) {
  return `/tenants/${encodeURIComponent(tenant)}/routes/${encodeURIComponent(name)}`;
}

export function renderRoutes(tenant, config) {
  const routes = tried((config && config.routes) || []);
  state.routes = routes;
  fillPlaces(routes);
  fill($('routes-body'), routes.map((r, i) => el('tr', { testid: 'route-row', 'data-route': r.name, 'data-position': i },
    el('td', {}, String(i + 1)),
    el('td', {}, r.name),
    el('td', { className: 'answer' }, (r.recipients || []).join(', ')),
    el('td', {}, (r.endpoints || []).join(', ')),
    el('td', {}, `${r.priority || 0}${r.stop === false ? '' : ', stop'}`),
    el('td', { className: 'nowrap' },
      el('button', {
        type: 'button', className: 'small', testid: 'route-up', disabled: i === 0,
        'aria-label': `Move route ${r.name} up`, onclick: () => move(tenant, r, routes[i - 1]),
      }, '↑'), ' ',
      el('button', {
        type: 'button', className: 'small', testid: 'route-down', disabled: i === routes.length - 1,
        'aria-label': `Move route ${r.name} down`, onclick: () => move(tenant, routes[i + 1], r),
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

// Puts `route` just before `other` (moving a route down is moving the next one up).
async function move(tenant, route, other) {
  try {
    await api(routePath(tenant, route.name), { method: 'PUT', body: body(route, other.name) });
    outcome(`Route ${route.name} now goes before ${other.name}.`, true);
  } catch (err) {
    outcome(`Moving ${route.name} failed: ${describe(err)}`, false);
  }
  await state.reloadConfig();
}

// The form's "Place" choices: last, or before any route.
function fillPlaces(routes) {
  const select = $('route-place');
  const keep = select.value;
  fill(select, [el('option', { value: '' }, 'last'),
    ...routes.map((r) => el('option', { value: r.name }, `before ${r.name}`))]);
  select.value = routes.some((r) => r.name === keep) ? keep : '';
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
  $('route-stop').checked = route.stop !== false;
  $('route-place').value = '';
  $('route-name').focus();
}

// Saves the form: a new route goes last or before the route chosen under "Place"; an
// existing one keeps its place (unless a place is chosen) and any field the form does not
// show (priority, headers, verdicts).
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
    stop: $('route-stop').checked,
  };
  const place = $('route-place').value;
  try {
    await api(routePath(tenant, name), { method: 'PUT', body: body(route, place || undefined) });
    outcome(`Route ${name} saved.`, true);
    form.reset();
  } catch (err) {
    fieldErrors(form, err.problem || { detail: describe(err) });
    outcome(`Route ${name} not saved: ${describe(err)}`, false);
  }
  await state.reloadConfig();
}
