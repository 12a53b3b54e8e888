// {{name}}: a postwire plugin. It sees each event (JSON, schema postwire.email.v1) and says
// what to do with it: deliver (possibly modified), drop, or route elsewhere.

import { config, log } from 'postwire:plugin/host@0.1.0';

export function transform(eventJson) {
  let ev;
  try {
    ev = JSON.parse(eventJson);
  } catch (e) {
    throw { tag: 'invalid-event', val: String(e) };
  }
  let cfg;
  try {
    cfg = JSON.parse(config());
  } catch (e) {
    throw { tag: 'invalid-config', val: String(e) };
  }
  const subject = (ev.message && ev.message.subject) || '';
  if (subject.includes('[bulk]')) {
    return { tag: 'drop', val: 'bulk mail' };
  }
  log('info', `{{name}} saw ${JSON.stringify(subject)}`);
  ev['tagged_by'] = cfg.tag ?? '{{name}}';
  return { tag: 'deliver', val: JSON.stringify(ev) };
}
