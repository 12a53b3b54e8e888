// A JavaScript plugin that writes to the console, for the host's output tests.
//
// Config { "do": "print" | "throw" | "fail" | "remember" }: `print` logs a line with
// console.log and one with console.error, then delivers the event; `throw` throws an uncaught
// Error; `fail` logs, then returns `failed`; `remember` delivers the subjects earlier messages
// left in this instance (a module global) and leaves its own, with a few MiB of heap: with a
// fresh instance per message it always reports none.

import { config } from 'postwire:plugin/host@0.1.0';

const seen = [];

export function transform(eventJson) {
  const action = JSON.parse(config()).do ?? 'print';
  const subject = JSON.parse(eventJson).message.subject;
  if (action === 'remember') {
    const seenBefore = seen.map((s) => s.subject);
    seen.push({ subject: subject ?? '', heap: 'x'.repeat(4 << 20) + subject });
    return { tag: 'deliver', val: JSON.stringify({ seen_before: seenBefore }) };
  }
  if (action === 'throw') {
    throw new Error(`noisy-js throws on purpose (subject ${JSON.stringify(subject)})`);
  }
  console.log(`noisy-js: looking at ${JSON.stringify(subject)}`);
  console.error('noisy-js: a line on stderr');
  if (action === 'fail') {
    throw { tag: 'failed', val: 'noisy-js fails on purpose' };
  }
  return { tag: 'deliver', val: eventJson };
}
