<?php
// A webhook receiver that checks postwire's draft-cavage deliveries the way receivers built on
// Copernica's PHP library (CopernicaMarketingSoftware/webhook-security: CopernicaRequest,
// Digest, DkimKey, Verifier, Signature, SignatureString) do. Their library cannot be
// installed here (no Composer registry), so this follows their parsing rules, each check
// marked with the class and rule it stands for. Written for postwire's tests, not copied.
//
// Run under PHP's built-in server: PW_CONFIG=receiver.json php -S 127.0.0.1:PORT smtpeter_receiver.php
// receiver.json, read at every request (the tests change it between requests):
//   dkim_txt      the key record's TXT text, as PHP's dns_get_record() returns it (strings
//                 joined); stands in for DkimKey's DNS lookup
//   account_id    the account id the receiver expects in x-copernica-id
//   keyid_suffix  the domain the keyId must end in (".copernica.com" in CopernicaRequest)
//   clock_offset  seconds added to the receiver's clock (the tests' stale-request case)
//   log           a file that gets one JSON line per request: ok, reason, and the request
//                 itself (method, uri, headers, body_b64) so tests can replay it changed
// Answers 204 when the request is accepted, 401 with the reason otherwise.

function refuse(string $reason): void
{
    throw new RuntimeException($reason);
}

function check_request(array $config): void
{
    // NormalizedHeaders: header names compared in lower case, the first of a name wins.
    $headers = [];
    foreach (apache_request_headers() as $name => $value) {
        $lower = strtolower($name);
        if (!array_key_exists($lower, $headers)) {
            $headers[$lower] = $value;
        }
    }

    // CopernicaRequest: a Digest header and a Date header must be present.
    if (!isset($headers['digest'])) refuse('Digest header is missing');
    if (!isset($headers['date'])) refuse('Date header is missing');

    // CopernicaRequest: the Date may be at most 60 seconds old.
    $now = time() + (int) ($config['clock_offset'] ?? 0);
    $date = strtotime($headers['date']);
    if ($date === false) refuse('Date header does not parse');
    if ($now - $date > 60) refuse('request older than 1 minute');

    // CopernicaRequest: an x-copernica-id header must be present.
    if (!isset($headers['x-copernica-id'])) refuse('Copernica id header is missing');

    // Digest: "<algorithm>=<base64>" split on '=' (only the first two parts count); the
    // algorithm is looked up, case-sensitively, in a table of lower-case IANA names.
    $parts = explode('=', $headers['digest']);
    $algorithm = $parts[0];
    $value = $parts[1] ?? '';
    $table = ['md5' => 'md5', 'sha' => 'sha1', 'sha-256' => 'sha256', 'sha-512' => 'sha512'];
    if (!array_key_exists($algorithm, $table)) refuse("Invalid hashing algorithm $algorithm");
    $body = file_get_contents('php://input');
    if (hash($table[$algorithm], $body, true) !== base64_decode($value)) {
        refuse('Digest header does not match body data');
    }

    // Signature: parameters read with /([a-zA-Z]*)="(.*?)"/; keyId and signature required;
    // the header list is split on single spaces.
    if (!isset($headers['signature'])) refuse('No signature found');
    preg_match_all('/([a-zA-Z]*)="(.*?)"/', $headers['signature'], $matches, PREG_SET_ORDER);
    $params = [];
    foreach ($matches as $m) {
        if (in_array($m[1], ['keyId', 'signature', 'algorithm', 'headers'], true)) {
            $params[$m[1]] = $m[2];
        }
    }
    if (!isset($params['keyId'])) refuse('KeyId not found in signature header');
    if (!isset($params['signature'])) refuse('Signature not found in signature header');
    $signed = explode(' ', $params['headers'] ?? '');
    $covers = function (string $name) use ($signed): bool {
        foreach ($signed as $h) {
            if (strtolower($h) === strtolower($name)) return true;
        }
        return false;
    };

    // CopernicaRequest: the signature must cover these headers ...
    foreach (['Host', 'Date', 'Content-length', 'Content-type', 'Digest', 'x-nonce'] as $name) {
        if (!$covers($name)) refuse("Invalid signature: the $name header is not included in the signature");
    }
    // ... and x-copernica-id, whose value must be the receiver's account id (Verifier::contains).
    if (!$covers('x-copernica-id') || $headers['x-copernica-id'] !== $config['account_id']) {
        refuse('invalid signature: the x-copernica-id header is not included in the signature or has an invalid value');
    }

    // CopernicaRequest: the keyId must be a name under the signer's domain.
    $suffix = $config['keyid_suffix'];
    if (!preg_match('/' . preg_quote($suffix, '/') . '$/', $params['keyId'])) {
        refuse('call is not signed by the expected domain');
    }

    // DkimKey: the record is split on ';', each tag on '=' with no trimming (only the first
    // two parts count); v must be exactly "DKIM1"; p becomes the body of a PEM public key.
    $record = [];
    foreach (explode(';', $config['dkim_txt']) as $tuple) {
        $kv = explode('=', $tuple);
        $record[$kv[0]] = $kv[1] ?? null;
    }
    if (($record['v'] ?? null) !== 'DKIM1') refuse('No valid dkim keys found');
    $pem = "-----BEGIN PUBLIC KEY-----\n" . ($record['p'] ?? '') . "\n-----END PUBLIC KEY-----\n";

    // Verifier + SignatureString: "(request-target)" is the lower-case method and the
    // request URI; each signed header becomes "name: trimmed value" (empty when absent),
    // lines joined with "\n".
    $values = $headers;
    $values['(request-target)'] = strtolower($_SERVER['REQUEST_METHOD']) . ' ' . $_SERVER['REQUEST_URI'];
    $lines = [];
    foreach ($signed as $name) {
        $lower = strtolower($name);
        $lines[] = $lower . ': ' . trim($values[$lower] ?? '');
    }
    $string = implode("\n", $lines);

    // Verifier::verify: the algorithm "rsa-sha256" split on '-' gives openssl_verify's digest.
    [$procedure, $hash] = array_pad(explode('-', strtolower($params['algorithm'] ?? '')), 2, '');
    if ($procedure !== 'rsa') refuse("unsupported algorithm {$params['algorithm']}");
    $key = openssl_pkey_get_public($pem);
    if ($key === false) refuse('the DNS key does not parse');
    if (openssl_verify($string, base64_decode($params['signature']), $key, $hash) !== 1) {
        refuse('signature is invalid');
    }
}

$config = json_decode(file_get_contents(getenv('PW_CONFIG')), true);
try {
    check_request($config);
    $result = ['ok' => true, 'reason' => ''];
    http_response_code(204);
} catch (RuntimeException $e) {
    $result = ['ok' => false, 'reason' => $e->getMessage()];
    http_response_code(401);
    echo $e->getMessage();
}
$result['method'] = $_SERVER['REQUEST_METHOD'];
$result['uri'] = $_SERVER['REQUEST_URI'];
$result['headers'] = apache_request_headers();
$result['body_b64'] = base64_encode(file_get_contents('php://input'));
file_put_contents($config['log'], json_encode($result) . "\n", FILE_APPEND | LOCK_EX);
