<?php
// Verifying postwire webhooks in PHP with what php-cli ships (hash, openssl, sodium):
// Standard Webhooks v1 and v1a, RFC 9421 (Ed25519) with Content-Digest, draft-cavage (RSA),
// keys from DNS. Run as a script it reads a test case as JSON on stdin (docs/verifying.md).
// PHP's dns_get_record() always asks the system's resolver: the script takes the TXT
// records from the case's "txt" map instead (a test cannot point it at its own server).

const POSTWIRE_TOLERANCE = 300; // seconds, either way
const POSTWIRE_COMPONENTS = ['@method', '@target-uri', 'content-digest', 'content-type', 'webhook-id'];

function postwire_fresh(int $ts, int $now): void
{
    if (abs($now - $ts) > POSTWIRE_TOLERANCE) throw new RuntimeException('timestamp outside the tolerance');
}

// [k, p bytes] of the DKIM-style TXT record named $keyid, only under $domain. $lookup(name)
// returns the record's text; by default dns_get_record() with the strings joined.
function postwire_dns_key(string $keyid, string $domain, ?callable $lookup = null): array
{
    if (!str_ends_with($keyid, "._postwire.$domain")) throw new RuntimeException("keyid $keyid is not under $domain");
    $lookup ??= fn ($name) => implode('', array_column(dns_get_record($name, DNS_TXT) ?: [], 'txt'));
    $tags = [];
    foreach (explode(';', $lookup($keyid)) as $tag) {
        if (str_contains($tag, '=')) {
            [$name, $value] = explode('=', $tag, 2);
            $tags[trim($name)] = trim($value);
        }
    }
    if (!isset($tags['p'])) throw new RuntimeException("no key at $keyid");
    return [$tags['k'] ?? 'rsa', base64_decode($tags['p'], true)];
}

// Standard Webhooks v1 ($secret "whsec_…") or v1a ($publicKey "whpk_…"); lower-case headers.
function postwire_verify_standard(string $body, array $headers, int $now, ?string $secret, ?string $publicKey): void
{
    $ts = (int) $headers['webhook-timestamp'];
    postwire_fresh($ts, $now);
    $signed = "{$headers['webhook-id']}.$ts.$body";
    foreach (explode(' ', $headers['webhook-signature']) as $sig) {
        [$version, $value] = array_pad(explode(',', $sig, 2), 2, '');
        $given = base64_decode($value, true);
        if ($given === false) continue;
        if ($version === 'v1' && $secret !== null) {
            $key = base64_decode(substr($secret, strlen('whsec_')));
            if (hash_equals(hash_hmac('sha256', $signed, $key, true), $given)) return;
        }
        if ($version === 'v1a' && $publicKey !== null && strlen($given) === SODIUM_CRYPTO_SIGN_BYTES) {
            $key = base64_decode(substr($publicKey, strlen('whpk_')));
            if (strlen($key) === SODIUM_CRYPTO_SIGN_PUBLICKEYBYTES
                && sodium_crypto_sign_verify_detached($given, $signed, $key)) return;
        }
    }
    throw new RuntimeException('no valid signature');
}

// RFC 9421 with an Ed25519 key from DNS; postwire serialises Signature-Input canonically,
// so the @signature-params line is the member as received.
function postwire_verify_rfc9421(string $method, string $url, array $headers, string $body, string $domain, int $now, ?callable $lookup = null): void
{
    [$label, $params] = explode('=', $headers['signature-input'], 2);
    $params = explode(', ', $params)[0];
    $param = fn ($name) => preg_match("/;$name=\"?([^\";]*)\"?/", $params, $m) ? $m[1] : null;
    preg_match('/^\(([^)]*)\)/', $params, $m);
    $covered = explode(' ', $m[1] ?? '');
    foreach (POSTWIRE_COMPONENTS as $c) {
        if (!in_array("\"$c\"", $covered, true)) throw new RuntimeException("$c is not covered");
    }
    if ($param('tag') !== 'postwire') throw new RuntimeException('wrong tag');
    postwire_fresh((int) $param('created'), $now);
    if ($param('expires') !== null && $now > (int) $param('expires')) throw new RuntimeException('expired');
    $digest = 'sha-256=:' . base64_encode(hash('sha256', $body, true)) . ':';
    if (($headers['content-digest'] ?? '') !== $digest) throw new RuntimeException('content-digest mismatch');
    [$k, $pub] = postwire_dns_key($param('keyid'), $domain, $lookup);
    if ($k !== 'ed25519' || strlen($pub) !== SODIUM_CRYPTO_SIGN_PUBLICKEYBYTES) {
        throw new RuntimeException('not an Ed25519 key'); // the key decides the algorithm
    }
    $values = $headers + ['@method' => $method, '@target-uri' => $url];
    $lines = [];
    foreach ($covered as $c) $lines[] = "$c: " . $values[trim($c, '"')];
    $base = implode("\n", $lines) . "\n\"@signature-params\": $params";
    if (!preg_match('/' . preg_quote($label, '/') . '=:([^:]*):/', $headers['signature'], $m)) {
        throw new RuntimeException("no signature for $label");
    }
    $sig = base64_decode($m[1], true);
    if ($sig === false || strlen($sig) !== SODIUM_CRYPTO_SIGN_BYTES
        || !sodium_crypto_sign_verify_detached($sig, $base, $pub)) throw new RuntimeException('bad signature');
}

// draft-cavage rsa-sha256 with the RSA key from DNS and the RFC 3230 Digest.
function postwire_verify_cavage(string $method, string $url, array $headers, string $body, string $domain, int $now, ?callable $lookup = null): void
{
    preg_match_all('/(\w+)="([^"]*)"/', $headers['signature'], $matches, PREG_SET_ORDER);
    $params = array_column($matches, 2, 1);
    $names = explode(' ', $params['headers'] ?? '');
    foreach (['(request-target)', 'host', 'date', 'digest'] as $h) {
        if (!in_array($h, $names, true)) throw new RuntimeException("$h is not signed");
    }
    postwire_fresh((int) strtotime($headers['date']), $now);
    [$alg, $digest] = array_pad(explode('=', $headers['digest'], 2), 2, '');
    if (strtolower($alg) !== 'sha-256' || $digest !== base64_encode(hash('sha256', $body, true))) {
        throw new RuntimeException('digest mismatch');
    }
    [$k, $der] = postwire_dns_key($params['keyId'], $domain, $lookup);
    $pem = "-----BEGIN PUBLIC KEY-----\n" . chunk_split(base64_encode($der), 64, "\n") . "-----END PUBLIC KEY-----\n";
    $key = openssl_pkey_get_public($pem);
    if ($k !== 'rsa' || $key === false || openssl_pkey_get_details($key)['type'] !== OPENSSL_KEYTYPE_RSA) {
        throw new RuntimeException('not an RSA key');
    }
    $u = parse_url($url);
    $values = $headers + ['(request-target)' => strtolower($method) . ' ' . $u['path'] . (isset($u['query']) ? "?{$u['query']}" : '')];
    $lines = [];
    foreach ($names as $h) $lines[] = "$h: " . ($values[$h] ?? '');
    $sig = base64_decode($params['signature'], true);
    if ($sig === false || openssl_verify(implode("\n", $lines), $sig, $key, OPENSSL_ALGO_SHA256) !== 1) {
        throw new RuntimeException('bad signature');
    }
}

if (PHP_SAPI === 'cli' && realpath($argv[0] ?? '') === __FILE__) {
    $c = json_decode(file_get_contents('php://stdin'), true);
    $headers = [];
    foreach ($c['request']['headers'] as [$name, $value]) $headers[strtolower($name)] = $value;
    $body = base64_decode($c['request']['body_base64']);
    $lookup = fn ($name) => $c['txt'][$name] ?? '';
    try {
        match ($c['scheme']) {
            'v1' => postwire_verify_standard($body, $headers, $c['now'], $c['secret'], null),
            'v1a' => postwire_verify_standard($body, $headers, $c['now'], null, $c['public_key']),
            'rfc9421' => postwire_verify_rfc9421($c['request']['method'], $c['request']['url'], $headers, $body, $c['domain'], $c['now'], $lookup),
            default => postwire_verify_cavage($c['request']['method'], $c['request']['url'], $headers, $body, $c['domain'], $c['now'], $lookup),
        };
    } catch (Throwable $e) {
        echo 'refused: ' . $e->getMessage() . "\n";
        exit(1);
    }
    echo "verified\n";
}
