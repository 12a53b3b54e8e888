// What the configuration editors share: the API's validation problems shown next to the
// field they name, list inputs, and which tenant is being edited.
'use strict';

import { $ } from './lib.js';

// The tenant the editors change: the one picked (not «all tenants»).
export function editableTenant() {
  return $('tenant').value || null;
}

export function splitList(text) {
  return String(text || '').split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

export function clearFieldErrors(form) {
  form.querySelectorAll('.field-error').forEach((e) => { e.textContent = ''; e.hidden = true; });
  form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
}

// The input a problem's `field` names: its path's last known segment, indexes dropped
// (`tenants.acme.routes[2].recipients[0]` → `recipients`). Unmatched problems go to the
// form's own error line.
export function fieldErrors(form, problem) {
  const names = new Set([...form.querySelectorAll('[data-field]')].map((e) => e.dataset.field));
  const parts = String(problem.field || '').replace(/\[\d+\]/g, '').split('.').reverse();
  const name = parts.find((p) => names.has(p));
  const input = name ? form.querySelector(`[data-field="${name}"]`) : null;
  const box = input ? form.querySelector(`.field-error[data-for="${name}"]`) : form.querySelector('.form-error');
  if (input) input.setAttribute('aria-invalid', 'true');
  if (box) {
    box.textContent = problem.detail || problem.title || 'invalid';
    box.hidden = false;
  }
}
