// Verifying postwire webhooks in Node.js with node:crypto and node:dns alone: Standard
// Webhooks v1 and v1a, RFC 9421 (Ed25519) with Content-Digest, draft-cavage (RSA), keys
// from DNS. Run as a script it reads a test case as JSON on stdin (docs/verifying.md).
'use strict';
const crypto = require('node:crypto');
const dns = require('node:dns').promises;

const TOLERANCE = 300; // seconds, either way
const COMPONENTS = ['@method', '@target-uri', 'content-digest', 'content-type', 'webhook-id'];

function fresh(ts, now) {
  if (!Number.isFinite(ts) || Math.abs(now - ts) > TOLERANCE) throw new Error('timestamp outside the tolerance');
}

// {k, p} of the DKIM-style TXT record named keyid, only under `domain`.
async function dnsKey(keyid, domain, nameserver) {
  if (!keyid.endsWith(`._postwire.${domain}`)) throw new Error(`keyid ${keyid} is not under ${domain}`);
  const resolver = new dns.Resolver();
  if (nameserver) resolver.setServers([nameserver]);
  const record = (await resolver.resolveTxt(keyid)).map((strings) => strings.join('')).join('');
  const tags = Object.fromEntries(record.split(';').filter((t) => t.includes('='))
    .map((t) => { const i = t.indexOf('='); return [t.slice(0, i).trim(), t.slice(i + 1).trim()]; }));
  return { k: tags.k || 'rsa', p: Buffer.from(tags.p, 'base64') };
}

// Standard Webhooks: v1 (HMAC-SHA256 with the whsec_ secret) or v1a (Ed25519, whpk_ key).
function verifyStandard(body, headers, { secret, publicKey }, now) {
  const ts = Number(headers['webhook-timestamp']);
  fresh(ts, now);
  const signed = Buffer.concat([Buffer.from(`${headers['webhook-id']}.${ts}.`), body]);
  for (const sig of headers['webhook-signature'].split(' ')) {
    const [version, value] = sig.split(',');
    const given = Buffer.from(value || '', 'base64');
    if (version === 'v1' && secret) {
      const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
      const want = crypto.createHmac('sha256', key).update(signed).digest();
      if (want.length === given.length && crypto.timingSafeEqual(want, given)) return;
    }
    if (version === 'v1a' && publicKey) {
      const raw = Buffer.from(publicKey.replace(/^whpk_/, ''), 'base64');
      const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
      if (crypto.verify(null, signed, key, given)) return;
    }
  }
  throw new Error('no valid signature');
}

function contentDigestOk(headers, body) {
  const want = 'sha-256=:' + crypto.createHash('sha256').update(body).digest('base64') + ':';
  return headers['content-digest'] === want;
}

// RFC 9421: one signature (label) with an Ed25519 key from DNS; postwire serialises
// Signature-Input canonically, so the @signature-params line is the member as received.
async function verifyRfc9421(method, url, headers, body, domain, now, nameserver) {
  const input = headers['signature-input'];
  const label = input.slice(0, input.indexOf('='));
  const params = input.slice(label.length + 1).split(', ')[0];
  const covered = params.slice(1, params.indexOf(')')).split(' ').map((c) => JSON.parse(c));
  if (!COMPONENTS.every((c) => covered.includes(c))) throw new Error('required components not covered');
  const param = (name) => (params.match(new RegExp(`;${name}=("?)([^";]*)\\1`)) || [])[2];
  if (param('tag') !== 'postwire') throw new Error('wrong tag');
  fresh(Number(param('created')), now);
  if (param('expires') && now > Number(param('expires'))) throw new Error('expired');
  if (!contentDigestOk(headers, body)) throw new Error('content-digest mismatch');
  const { k, p } = await dnsKey(param('keyid'), domain, nameserver);
  if (k !== 'ed25519') throw new Error('not an Ed25519 key'); // the key decides the algorithm
  const value = (c) => (c === '@method' ? method : c === '@target-uri' ? url : headers[c]);
  const base = covered.map((c) => `"${c}": ${value(c)}`).join('\n') + `\n"@signature-params": ${params}`;
  const sig = headers.signature.match(new RegExp(`${label}=:([^:]*):`));
  const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: p.toString('base64url') }, format: 'jwk' });
  if (!sig || !crypto.verify(null, Buffer.from(base), key, Buffer.from(sig[1], 'base64'))) throw new Error('bad signature');
}

// draft-cavage rsa-sha256 with the RSA key from DNS and the RFC 3230 Digest.
async function verifyCavage(method, url, headers, body, domain, now, nameserver) {
  const params = {};
  for (const m of headers.signature.matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  const names = params.headers.split(' ');
  for (const h of ['(request-target)', 'host', 'date', 'digest']) if (!names.includes(h)) throw new Error(`${h} not signed`);
  fresh(Date.parse(headers.date) / 1000, now);
  const [alg, digest] = [headers.digest.slice(0, 8), headers.digest.slice(8)];
  if (alg.toLowerCase() !== 'sha-256=' || digest !== crypto.createHash('sha256').update(body).digest('base64')) throw new Error('digest mismatch');
  const { k, p } = await dnsKey(params.keyId, domain, nameserver);
  if (k !== 'rsa') throw new Error('not an RSA key');
  const u = new URL(url);
  const value = (h) => (h === '(request-target)' ? `${method.toLowerCase()} ${u.pathname}${u.search}` : headers[h]);
  const signed = names.map((h) => `${h}: ${value(h)}`).join('\n');
  const key = crypto.createPublicKey({ key: p, format: 'der', type: 'spki' });
  if (!crypto.verify('sha256', Buffer.from(signed), key, Buffer.from(params.signature, 'base64'))) throw new Error('bad signature');
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const c = JSON.parse(Buffer.concat(chunks).toString());
  const headers = {};
  for (const [name, value] of c.request.headers) headers[name.toLowerCase()] = value;
  const body = Buffer.from(c.request.body_base64, 'base64');
  const { method, url } = c.request;
  try {
    if (c.scheme === 'v1') verifyStandard(body, headers, { secret: c.secret }, c.now);
    else if (c.scheme === 'v1a') verifyStandard(body, headers, { publicKey: c.public_key }, c.now);
    else if (c.scheme === 'rfc9421') await verifyRfc9421(method, url, headers, body, c.domain, c.now, c.dns_server);
    else await verifyCavage(method, url, headers, body, c.domain, c.now, c.dns_server);
  } catch (e) {
    console.log(`refused: ${e.message}`);
    process.exit(1);
  }
  console.log('verified');
}

if (require.main === module) main();
module.exports = { verifyStandard, verifyRfc9421, verifyCavage };
