// The delivery timeline: search (address, subject, ids), each delivery with its mail's
// sender, recipients and subject; the details of one delivery with its attempts, payload
// and the Resend button.
'use strict';

import { $, REPLAY_POLL_MS, REPLAY_POLL_TRIES, SECRET_HEADERS, state, el, fill, time, timeCell, badge, describe, query, api, tenant, section } from './lib.js';

export async function loadDeliveries() {
  const params = {
    tenant: tenant(), status: $('status').value, limit: $('limit').value,
    q: $('search').value.trim(), since: $('search-since').value,
  };
  const data = await section('deliveries', () => api(`/deliveries${query(params)}`));
  if (!data) return;
  fill($('deliveries-body'), (data.deliveries || []).map(deliveryRow), $('deliveries-empty'));
}

export function attemptChips(attempts) {
  return el('ol', { className: 'attempts' }, (attempts || []).map((a) => {
    const code = a.status ?? a.result;
    const detail = [`attempt ${a.attempt}`, a.result, a.status, a.error,
      a.duration_ms !== undefined ? `${a.duration_ms} ms` : '', time(a.at)].filter((x) => x !== undefined && x !== null && x !== '').join(' · ');
    return el('li', { className: `chip chip-${a.result || 'unknown'}`, title: detail, testid: 'attempt' },
      el('span', { className: 'code' }, String(code ?? '?')),
      el('span', { className: 'muted' }, ` ${time(a.at).slice(11, 19)}`));
  }));
}

// The mail's sender → recipients and subject, for a row.
function mailCell(m) {
  if (!m) return el('td', { className: 'muted' }, '(no summary)');
  const from = (m.from && m.from.length ? m.from.join(', ') : m.mail_from) || '<>';
  return el('td', { className: 'mail' },
    el('div', { className: 'subject', testid: 'delivery-subject' }, m.subject || '(no subject)'),
    el('div', { className: 'muted' }, `${from} → ${(m.rcpt_to || []).join(', ')}`));
}

export function deliveryRow(d) {
  const open = () => openDetail(d.delivery_id);
  return el('tr', {
    testid: 'delivery-row', className: 'clickable', 'data-delivery-id': d.delivery_id,
    'data-status': d.status, 'data-mail-id': d.mail_id,
    onclick: (e) => { if (!e.target.closest('button')) open(); },
  },
  timeCell(d.last_at),
  el('td', {}, badge(d.status)),
  mailCell(d.mail),
  el('td', { className: 'ids' },
    el('button', { type: 'button', className: 'link', testid: 'delivery-open', onclick: open,
      'aria-label': `Details of delivery ${d.delivery_id}` }, d.mail_id),
    el('div', { className: 'muted' }, d.delivery_id)),
  el('td', {}, `${d.tenant} / ${d.route} → ${d.endpoint}`),
  el('td', {}, attemptChips(d.attempts)));
}

function size(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n)) return '';
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`;
}

function mailFacts(m) {
  if (!m) return [];
  return [
    ['Subject', m.subject || '(no subject)'], ['From', (m.from || []).join(', ')],
    ['Envelope sender', m.mail_from || '<>'], ['Recipients', (m.rcpt_to || []).join(', ')],
    ['Size', size(m.size)], ['Attachments', String(m.attachments ?? 0)],
    ['Authentication', m.auth], ['Routes', (m.routes || []).join(', ')], ['Received', time(m.received_at)],
  ];
}

export async function openDetail(id, { reload = false } = {}) {
  state.detailId = id;
  const panel = $('detail');
  if (!reload) {
    panel.hidden = false;
    $('detail-title').textContent = `Delivery ${id}`;
    $('detail-summary').replaceChildren();
    $('detail-attempts').replaceChildren();
    $('detail-headers').replaceChildren();
    $('detail-headers-empty').hidden = true;
    $('detail-payload').textContent = 'Loading…';
    $('resend-outcome').textContent = '';
    panel.focus();
  }
  let d;
  try {
    d = await section('detail', () => api(`/deliveries/${encodeURIComponent(id)}`));
  } catch {
    $('detail-payload').textContent = '';
    return;
  }
  if (!d || state.detailId !== id) return;
  state.detail = d;
  const facts = [
    ['Status', badge(d.status)], ...mailFacts(d.mail), ['Mail id', d.mail_id], ['Delivery id', d.delivery_id],
    ['Tenant', d.tenant], ['Route', d.route], ['Endpoint', d.endpoint],
    ['Last attempt', time(d.last_at)], ['DLQ seq', d.dlq_seq],
  ].filter(([, v]) => v !== undefined && v !== null && v !== '');
  $('detail-summary').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  // Numbered in time order: a resend or replay is a new OUTBOX message whose own count
  // starts again at 1 (shown in the title).
  $('detail-attempts').replaceChildren(...(d.attempts || []).map((a, i) => el('tr', { testid: 'detail-attempt', title: `attempt ${a.attempt} of its send` },
    el('td', {}, String(i + 1)), timeCell(a.at), el('td', {}, a.result || ''),
    el('td', {}, a.status ?? ''), el('td', { className: 'answer' }, a.error || ''),
    el('td', {}, a.duration_ms !== undefined ? `${a.duration_ms} ms` : ''))));
  fill($('detail-headers'), headerPairs(d.headers).map(([k, v]) => el('tr', {},
    el('th', { scope: 'row' }, k), el('td', { className: 'answer' }, SECRET_HEADERS.test(k) ? '«hidden»' : v))),
  $('detail-headers-empty'));
  $('detail-payload').textContent = prettyPayload(d.payload);
  $('resend').disabled = d.payload === undefined || d.payload === null;
}

export function reloadDetail() {
  return state.detailId ? openDetail(state.detailId, { reload: true }) : Promise.resolve();
}

// Resend: the same webhook-id again, as a new attempt; waits for one more attempt to show.
export async function resend() {
  const d = state.detail;
  const outcome = $('resend-outcome');
  if (!d) return;
  const before = (d.attempts || []).length;
  $('resend').disabled = true;
  outcome.dataset.state = 'pending';
  outcome.textContent = 'Sending again…';
  try {
    const r = await api(`/deliveries/${encodeURIComponent(d.delivery_id)}/resend`, { method: 'POST' });
    outcome.textContent = `Queued again (from the ${r.from === 'dlq' ? 'DLQ' : 'kept payload'}); waiting for the attempt…`;
  } catch (err) {
    outcome.textContent = `Resend failed: ${describe(err)}`;
    outcome.dataset.state = 'error';
    $('resend').disabled = false;
    return;
  }
  for (let i = 0; i < REPLAY_POLL_TRIES && state.detailId === d.delivery_id; i++) {
    await new Promise((r) => setTimeout(r, REPLAY_POLL_MS));
    let now;
    try {
      now = await api(`/deliveries/${encodeURIComponent(d.delivery_id)}`);
    } catch {
      continue;
    }
    const attempts = now.attempts || [];
    if (attempts.length > before && now.status !== 'retrying') {
      const last = attempts[attempts.length - 1];
      await Promise.allSettled([reloadDetail(), loadDeliveries(), state.reloadConfig && state.reloadConfig()]);
      outcome.textContent = `Attempt ${attempts.length}: ${last.result}${last.status ? ` (HTTP ${last.status})` : ''}.`;
      outcome.dataset.state = last.result === 'delivered' ? 'done' : 'error';
      return;
    }
  }
  outcome.textContent = 'No new attempt seen yet; refresh later.';
  outcome.dataset.state = 'error';
}

export function headerPairs(headers) {
  if (!headers) return [];
  if (Array.isArray(headers)) {
    return headers.map((h) => (Array.isArray(h) ? [String(h[0]), String(h[1])]
      : [String(h.name), String(h.value)]));
  }
  return Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => [k, String(x)]));
}

export function prettyPayload(payload) {
  if (payload === undefined || payload === null) {
    return 'No payload held (kept for the tenant\'s payload_retention_days, or while in the DLQ).';
  }
  if (typeof payload === 'string') {
    try {
      return JSON.stringify(JSON.parse(payload), null, 2);
    } catch {
      return payload;
    }
  }
  return JSON.stringify(payload, null, 2);
}
