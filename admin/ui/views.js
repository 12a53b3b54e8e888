// The dashboard's sections: overview and charts, dead letters, endpoints (with the test
// event) and plugins. The timeline and details are in timeline.js.
'use strict';

import { $, REPLAY_POLL_MS, REPLAY_POLL_TRIES, SERIES, state, el, svg, fill, showError, time, timeCell, badge, describe, query, api, tenant, section } from './lib.js';
import { loadDeliveries, openDetail, reloadDetail } from './timeline.js';
import { loadAudit } from './config.js';

// --- overview and charts --------------------------------------------------------------------

export async function loadStats() {
  const hours = $('hours').value; // '' = the API picks the period that shows the data
  const data = await section('overview', () => api(`/stats${query({ tenant: tenant(), hours })}`));
  if (!data) return;
  const label = { 1: 'last hour', 6: 'last 6 hours', 24: 'last 24 hours', 72: 'last 3 days', 168: 'last 7 days' };
  const width = Number(data.bucket_secs) >= 3600 ? `${Number(data.bucket_secs) / 3600} h` : `${Number(data.bucket_secs) / 60} min`;
  $('period').textContent = `${hours ? '' : 'auto: '}${label[data.hours] || `${data.hours} h`}, ${width} buckets, until ${time(data.end).slice(11, 16)}Z`;
  $('no-data').hidden = !data.empty;
  const buckets = (data.buckets || []).slice().sort((a, b) => String(a.t).localeCompare(String(b.t)));
  const sum = (key) => buckets.reduce((n, b) => n + (Number(b[key]) || 0), 0);
  $('count-received').textContent = sum('received');
  $('count-delivered').textContent = sum('delivered');
  $('count-failed').textContent = sum('failed');
  $('count-dead').textContent = sum('dead');
  $('count-dlq').textContent = buckets.length ? Number(buckets[buckets.length - 1].dlq_depth) || 0 : 0;
  $('charts').replaceChildren(...SERIES.map(([key, name]) => chart(buckets, key, name, data)));
}

// One small bar chart per series, each with its own scale.
export function chart(buckets, key, label, range = {}) {
  const W = 320;
  const H = 110;
  const top = 8;
  const bottom = 20;
  const left = 30;
  const plotH = H - top - bottom;
  const plotW = W - left - 4;
  const values = buckets.map((b) => Number(b[key]) || 0);
  const max = Math.max(1, ...values);
  const total = key === 'dlq_depth' ? values[values.length - 1] || 0 : values.reduce((a, b) => a + b, 0);
  const summary = key === 'dlq_depth' ? `now ${total}, at most ${Math.max(0, ...values)}` : `${total} in all`;
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, role: 'img', class: `chart chart-${key}`,
    'aria-label': `${label} per bucket: ${summary}`, 'data-testid': `chart-${key}`,
  });
  root.append(
    svg('line', { x1: left, y1: top + plotH, x2: W - 4, y2: top + plotH, class: 'axis' }),
    svg('text', { x: left - 4, y: top + 8, class: 'tick', 'text-anchor': 'end' }, String(max)),
    svg('text', { x: left - 4, y: top + plotH, class: 'tick', 'text-anchor': 'end' }, '0'),
  );
  const step = values.length ? plotW / values.length : plotW;
  values.forEach((v, i) => {
    const h = (v / max) * plotH;
    const bar = svg('rect', {
      x: (left + i * step + step * 0.1).toFixed(2), y: (top + plotH - h).toFixed(2),
      width: Math.max(1, step * 0.8).toFixed(2), height: h.toFixed(2), class: 'bar',
    });
    bar.append(svg('title', {}, `${time(buckets[i].t)}: ${v}`));
    root.append(bar);
  });
  if (buckets.length) {
    // The axis runs from the first bucket's start to now (the last bucket ends now).
    root.append(
      svg('text', { x: left, y: H - 4, class: 'tick' }, time(range.start || buckets[0].t).slice(5, 16)),
      svg('text', { x: W - 4, y: H - 4, class: 'tick', 'text-anchor': 'end', 'data-testid': 'axis-end' },
        `now ${time(range.end || buckets[buckets.length - 1].t).slice(11, 16)}`),
    );
  }
  if (!buckets.length || range.empty) {
    root.append(svg('text', { x: left + plotW / 2, y: top + plotH / 2, class: 'tick', 'text-anchor': 'middle' }, 'no data yet'));
  }
  return el('figure', { className: 'chart-box' }, el('figcaption', {}, `${label} — ${summary}`), root);
}

// --- dead letters -------------------------------------------------------------------------------

export async function loadDlq() {
  const data = await section('dlq', () => api(`/dlq${query({ tenant: tenant() })}`));
  if (!data) return;
  state.deadLetters = data.dead_letters || [];
  const present = new Set(state.deadLetters.map((d) => Number(d.seq)));
  for (const seq of [...state.selected]) if (!present.has(seq)) state.selected.delete(seq);
  fill($('dlq-body'), state.deadLetters.map(dlqRow), $('dlq-empty'));
  syncSelection();
}

export function dlqRow(d) {
  const seq = Number(d.seq);
  const answer = [d.last_status, d.last_error].filter((x) => x !== undefined && x !== null && x !== '').join(' ');
  return el('tr', { testid: 'dlq-row', 'data-seq': seq, 'data-delivery-id': d.delivery_id },
    el('td', {}, el('input', {
      type: 'checkbox', testid: 'dlq-select', checked: state.selected.has(seq),
      'aria-label': `Select dead letter ${seq}`,
      onchange: (e) => {
        if (e.target.checked) state.selected.add(seq);
        else state.selected.delete(seq);
        syncSelection();
      },
    })),
    el('td', {}, String(seq)),
    timeCell(d.failed_at),
    el('td', {}, `${d.tenant} / ${d.route} → ${d.endpoint}`),
    el('td', { className: 'ids' },
      el('button', { type: 'button', className: 'link', onclick: () => openDetail(d.delivery_id) }, d.mail_id),
      el('div', { className: 'muted' }, d.delivery_id)),
    el('td', {}, String(d.attempts ?? '')),
    el('td', { className: 'answer' }, answer),
    el('td', {}, el('button', {
      type: 'button', testid: 'dlq-replay', 'aria-label': `Replay dead letter ${seq}`,
      onclick: () => replay([seq]),
    }, 'Replay')),
  );
}

export function syncSelection() {
  const n = state.selected.size;
  const button = $('replay-selected');
  button.disabled = n === 0;
  button.textContent = n ? `Replay selected (${n})` : 'Replay selected';
  const all = $('dlq-all');
  all.disabled = state.deadLetters.length === 0;
  all.checked = n > 0 && n === state.deadLetters.length;
  all.indeterminate = n > 0 && n < state.deadLetters.length;
}

export async function replay(seqs) {
  const outcome = $('dlq-outcome');
  const ids = new Map(state.deadLetters.map((d) => [Number(d.seq), d.delivery_id]));
  const buttons = document.querySelectorAll('[data-testid="dlq-replay"], #replay-selected');
  buttons.forEach((b) => { b.disabled = true; });
  outcome.textContent = `Replaying ${seqs.length} dead letter${seqs.length === 1 ? '' : 's'}…`;
  outcome.dataset.state = 'pending';
  let result;
  try {
    result = await api('/dlq/replay', { method: 'POST', body: { seqs } });
  } catch (err) {
    outcome.textContent = `Replay failed: ${describe(err)}`;
    outcome.dataset.state = 'error';
    await loadDlq().catch(() => {});
    return;
  }
  for (const seq of seqs) state.selected.delete(seq);
  // `replayed` holds delivery ids (or seqs, or objects with either); `failed` the refusals.
  const replayed = (result.replayed || []).map((r) => {
    if (r && typeof r === 'object') return r.delivery_id || ids.get(Number(r.seq));
    return typeof r === 'number' ? ids.get(r) : String(r);
  }).filter(Boolean);
  const seqOf = new Map([...ids].map(([seq, id]) => [id, seq]));
  const failed = (result.failed || []).map((f) => (f && typeof f === 'object'
    ? `seq ${f.seq ?? '?'}: ${f.error || f.detail || 'failed'}` : String(f)));
  let text = `Replayed ${replayed.length} of ${seqs.length}.`;
  if (failed.length) text += ` Not replayed: ${failed.join('; ')}.`;
  outcome.textContent = replayed.length ? `${text} Waiting for delivery…` : text;
  outcome.dataset.state = failed.length ? 'error' : 'pending';
  await Promise.allSettled([loadDlq(), loadDeliveries(), loadStats()]);
  if (replayed.length) await awaitDelivered(new Map(replayed.map((id) => [id, seqOf.get(id)])), text);
}

// Polls each replayed delivery (id → its former DLQ seq) until the worker has delivered it,
// or it is back in the DLQ under a new seq.
export async function awaitDelivered(pending, text) {
  const outcome = $('dlq-outcome');
  const delivered = [];
  const dead = [];
  const token = state.token;
  for (let i = 0; i < REPLAY_POLL_TRIES && pending.size && state.token === token; i++) {
    await new Promise((r) => setTimeout(r, REPLAY_POLL_MS));
    for (const [id, seq] of [...pending]) {
      let d;
      try {
        d = await api(`/deliveries/${encodeURIComponent(id)}`);
      } catch {
        continue; // not listed yet, or a passing error: ask again
      }
      if (d.status === 'delivered') {
        pending.delete(id);
        delivered.push(id);
      } else if (d.dlq_seq !== undefined && d.dlq_seq !== null && Number(d.dlq_seq) !== seq) {
        pending.delete(id);
        dead.push(id);
      }
    }
  }
  if (state.token !== token) return;
  const parts = [text];
  if (delivered.length) parts.push(`Delivered: ${delivered.join(', ')}.`);
  if (dead.length) parts.push(`Failed again: ${dead.join(', ')}.`);
  if (pending.size) parts.push(`Not delivered yet: ${[...pending.keys()].join(', ')}.`);
  outcome.textContent = parts.join(' ');
  outcome.dataset.state = pending.size || dead.length ? 'error' : 'done';
  await Promise.allSettled([loadDlq(), loadDeliveries(), loadStats(), loadEndpoints(), reloadDetail()]);
}

// --- endpoints and plugins ---------------------------------------------------------------------

export async function loadEndpoints() {
  const data = await section('endpoints', () => api(`/endpoints${query({ tenant: tenant() })}`));
  if (!data) return;
  fill($('endpoints-body'), (data.endpoints || []).map(endpointRow), $('endpoints-empty'));
}

export function endpointRow(e) {
  const failing = !e.disabled && Number(e.failed_24h) > 0
    && !(Number(e.last_status) >= 200 && Number(e.last_status) < 300);
  const health = e.disabled ? 'disabled' : failing ? 'failing' : 'healthy';
  const action = e.disabled ? 'enable' : 'disable';
  return el('tr', { testid: 'endpoint-row', 'data-tenant': e.tenant, 'data-endpoint': e.endpoint, 'data-health': health },
    el('td', {}, `${e.tenant} / ${e.endpoint}`),
    el('td', { className: 'answer' }, e.url || ''),
    el('td', {}, badge(health), e.reason ? el('div', { className: 'muted' }, e.reason) : null),
    el('td', {}, [e.last_status ?? e.last_result, time(e.last_at)].filter((x) => x !== undefined && x !== null && x !== '').join(' · ')),
    el('td', {}, String(e.delivered_24h ?? '')),
    el('td', {}, String(e.failed_24h ?? '')),
    el('td', { className: 'nowrap' }, el('button', {
      type: 'button', testid: 'endpoint-toggle',
      'aria-label': `${action === 'enable' ? 'Enable' : 'Disable'} endpoint ${e.endpoint} of ${e.tenant}`,
      onclick: (ev) => toggleEndpoint(e, action, ev.target),
    }, action === 'enable' ? 'Enable' : 'Disable'), ' ', el('button', {
      type: 'button', testid: 'endpoint-test',
      'aria-label': `Send a test event to endpoint ${e.endpoint} of ${e.tenant}`,
      onclick: (ev) => testEndpoint(e, ev.target),
    }, 'Send test event'), ' ', el('button', {
      type: 'button', className: 'small', testid: 'endpoint-recover',
      'aria-label': `Resend the failed deliveries of endpoint ${e.endpoint} of ${e.tenant}`,
      onclick: (ev) => recover(e, ev.target),
    }, 'Recover'),
    el('div', { className: 'test-outcome', testid: 'endpoint-test-outcome', role: 'status' })));
}

// Recover: every dead or refused delivery of the endpoint in the chosen period, again.
export async function recover(e, button) {
  const out = $('recover-outcome');
  button.disabled = true;
  try {
    const r = await api(`/tenants/${encodeURIComponent(e.tenant)}/endpoints/${encodeURIComponent(e.endpoint)}/recover`,
      { method: 'POST', body: { since: $('recover-since').value } });
    const failed = (r.failed || []).map((f) => `${f.delivery_id}: ${f.error}`);
    out.textContent = `${e.tenant} / ${e.endpoint}: ${(r.resent || []).length} sent again.${failed.length ? ` Not sent: ${failed.join('; ')}.` : ''}`;
    out.dataset.state = failed.length ? 'error' : 'done';
  } catch (err) {
    out.textContent = `Recover failed: ${describe(err)}`;
    out.dataset.state = 'error';
  } finally {
    button.disabled = false;
  }
  await Promise.allSettled([loadDlq(), loadDeliveries(), loadAudit()]);
}

// A signed test event; shows the receiver's answer and how long it took.
export async function testEndpoint(e, button) {
  const out = button.parentElement.querySelector('[data-testid="endpoint-test-outcome"]');
  button.disabled = true;
  out.textContent = 'Sending…';
  out.dataset.state = 'pending';
  try {
    const r = await api(`/tenants/${encodeURIComponent(e.tenant)}/endpoints/${encodeURIComponent(e.endpoint)}/test`,
      { method: 'POST' });
    out.textContent = `${r.result}: ${r.status ? `HTTP ${r.status}` : 'no answer'} in ${r.duration_ms} ms${r.error ? ` (${r.error})` : ''} · webhook-id ${r.webhook_id}`;
    out.dataset.state = r.result === 'delivered' ? 'done' : 'error';
    out.dataset.webhookId = r.webhook_id;
    loadAudit().catch(() => {}); // the audit view shows the test event
  } catch (err) {
    out.textContent = `Test failed: ${describe(err)}`;
    out.dataset.state = 'error';
  } finally {
    button.disabled = false;
  }
}

export async function toggleEndpoint(e, action, button) {
  button.disabled = true;
  try {
    await api(`/tenants/${encodeURIComponent(e.tenant)}/endpoints/${encodeURIComponent(e.endpoint)}/${action}`,
      { method: 'POST' });
    showError('endpoints', null);
  } catch (err) {
    showError('endpoints', err);
  }
  await loadEndpoints().catch(() => {});
}

export async function loadPlugins() {
  const data = await section('plugins', () => api(`/plugins${query({ tenant: tenant() })}`));
  if (!data) return;
  fill($('plugins-body'), (data.plugins || []).map((p) => el('tr', { testid: 'plugin-row' },
    el('td', {}, p.tenant || ''),
    el('td', {}, String(p.index ?? '')),
    el('td', { className: 'answer' }, p.file || p.name || ''),
    el('td', { className: 'answer', title: p.sha256 || undefined }, String(p.sha256 || '').slice(0, 16)),
    el('td', {}, size(p.size)),
    timeCell(p.modified))), $('plugins-empty'));
  fill($('uploaded-body'), (data.uploaded || []).map((u) => el('tr', { testid: 'uploaded-row' },
    el('td', {}, u.tenant || ''),
    el('td', {}, u.name || ''),
    el('td', { className: 'answer' }, String(u.version ?? '')),
    el('td', {}, size(u.size)),
    el('td', {}, time(u.uploaded_at), u.uploaded_by ? el('div', { className: 'muted' }, `by ${u.uploaded_by}`) : null),
    el('td', {}, u.active ? badge('active', 'healthy') : ''))), $('uploaded-empty'));
}

export function size(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n) || bytes === null || bytes === undefined) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
