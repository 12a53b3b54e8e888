// Digest: replaces the event with a compact summary for dashboards and chat bots.
//
// Output: { mail_id, route, from, subject, snippet, attachments: [filename...], words }.
// Config (optional): { "snippet_chars": 120 }.
//
// Build: componentize-js --wit guest-sdk/wit --world-name plugin \
//          --disable http --disable fetch-event plugin.js -o digest.wasm

import { config, log } from 'postwire:plugin/host@0.1.0';

function fail(tag, message) {
  // A thrown { tag, val } becomes the `plugin-error` of the result.
  throw { tag, val: message };
}

export function transform(eventJson) {
  let ev;
  try {
    ev = JSON.parse(eventJson);
  } catch (e) {
    fail('invalid-event', String(e));
  }
  if (!ev || typeof ev.message !== 'object') {
    fail('invalid-event', 'no message object');
  }
  let cfg;
  try {
    cfg = JSON.parse(config());
  } catch (e) {
    fail('invalid-config', String(e));
  }
  const max = Number.isInteger(cfg.snippet_chars) ? cfg.snippet_chars : 120;

  const m = ev.message;
  const from = (m.from && m.from[0]) || {};
  const text = (m.text || '').replace(/\s+/g, ' ').trim();
  const snippet = text.length > max ? text.slice(0, max) + '…' : text;
  const digest = {
    mail_id: ev.mail_id,
    route: ev.route,
    from: from.name ? `${from.name} <${from.address}>` : from.address || ev.envelope.mail_from,
    subject: m.subject || '(no subject)',
    snippet,
    attachments: (m.attachments || []).map((a) => a.filename || a.id),
    words: text ? text.split(' ').length : 0,
  };
  log('debug', `Digest of ${digest.words} words.`);
  return { tag: 'deliver', val: JSON.stringify(digest) };
}
