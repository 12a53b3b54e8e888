#!/usr/bin/env node
// Interop with Joyent's http-signature (draft-cavage), driven by tests/py/test_signatures_interop.py.
//
//   node cavage.js verify <capture.json> <public.pem>
//       Verifies a captured request (the JSON capture format of `postwire verify`) with
//       http-signature's parseRequest + verifySignature and checks the RFC 3230 Digest.
//       Prints {"ok": true|false, ...}; exit 0 when valid, 1 when not.
//   node cavage.js sign <url> <body-file> <private.pem> <keyid>
//       Signs a POST the way a Joyent client does (Authorization: Signature, rsa-sha256) and
//       prints it as a JSON capture.
//
// Packages come from $NODE_PATH (scripts/tools.sh installs them into $POSTWIRE_TOOLS/node).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const httpSignature = require('http-signature');

function verify(capturePath, publicPem) {
  const cap = JSON.parse(fs.readFileSync(capturePath, 'utf8'));
  const url = new URL(cap.url);
  const headers = {};
  for (const [name, value] of cap.headers) {
    const key = name.toLowerCase();
    headers[key] = key in headers ? headers[key] + ', ' + value : value;
  }
  if (!('host' in headers)) headers.host = url.host;
  const body = cap.body_base64 !== undefined
    ? Buffer.from(cap.body_base64, 'base64')
    : Buffer.from(cap.body || '', 'utf8');
  const req = {
    method: cap.method,
    url: url.pathname + url.search,
    headers,
    httpVersion: '1.1',
    httpVersionMajor: 1,
    httpVersionMinor: 1,
  };
  const parsed = httpSignature.parseRequest(req, {
    clockSkew: 300,
    headers: ['(request-target)', 'host', 'date', 'digest'],
  });
  const signatureOk = httpSignature.verifySignature(parsed, fs.readFileSync(publicPem, 'utf8'));
  const digest = 'SHA-256=' + crypto.createHash('sha256').update(body).digest('base64');
  const digestOk = headers.digest === digest;
  const ok = signatureOk && digestOk;
  process.stdout.write(JSON.stringify({ ok, signatureOk, digestOk, keyId: parsed.keyId }) + '\n');
  process.exit(ok ? 0 : 1);
}

function sign(target, bodyPath, privatePem, keyId) {
  const url = new URL(target);
  const body = fs.readFileSync(bodyPath);
  const headers = {
    host: url.host,
    'content-type': 'application/json',
    digest: 'SHA-256=' + crypto.createHash('sha256').update(body).digest('base64'),
    'x-nonce': crypto.randomBytes(12).toString('hex'),
  };
  const req = {
    method: 'POST',
    path: url.pathname + url.search,
    getHeader: (name) => headers[name.toLowerCase()],
    setHeader: (name, value) => { headers[name.toLowerCase()] = value; },
  };
  httpSignature.signRequest(req, {
    key: fs.readFileSync(privatePem, 'utf8'),
    keyId,
    algorithm: 'rsa-sha256',
    headers: ['(request-target)', 'host', 'date', 'digest', 'content-type', 'x-nonce'],
  });
  const capture = {
    method: 'POST',
    url: target,
    headers: Object.entries(headers),
    body_base64: body.toString('base64'),
  };
  process.stdout.write(JSON.stringify(capture, null, 2) + '\n');
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'verify' && args.length === 2) {
  verify(...args);
} else if (cmd === 'sign' && args.length === 4) {
  sign(...args);
} else {
  process.stderr.write('usage: cavage.js verify <capture.json> <public.pem> | sign <url> <body> <private.pem> <keyid>\n');
  process.exit(2);
}
