"""Keys through real DNS: a dnslib server on 127.0.0.1:<free port> serves the TXT records that
`postwire keys dns-record`/`rotate` print, and `postwire verify --allow-domain … --dns-server …`
fetches them by keyid. Covers rotation overlap, a removed selector, a keyid outside the
allowed domain, and a key of the wrong type.
"""

from __future__ import annotations

import pytest

from signing import Dns, generate, postwire, sign_request, write_capture

DOMAIN = "acme.test"
URL = "https://hooks.acme.test/in"
BODY = b'{"schema":"postwire.email.v1","id":"msg_dns"}'
T0 = 1_900_000_000  # signing and verification times are given explicitly (--now)


@pytest.fixture
def dns():
    server = Dns()
    try:
        yield server
    finally:
        server.stop()


def verify(dns: Dns, capture_path, now: int, *extra, check: int = 0):
    return postwire("verify", capture_path, "--allow-domain", DOMAIN, "--dns-server", dns.addr,
                    "--now", now, *extra, check=check).stdout


def rotate(keyring, selector: str, now: int, alg: str = "ed25519", overlap: int = 3600) -> str:
    return postwire("keys", "rotate", "--keyring", keyring, "--domain", DOMAIN, "--alg", alg,
                    "--selector", selector, "--now", now, "--overlap-secs", overlap).stdout


def test_rfc9421_key_from_dns(tmp_path, dns):
    private, _ = generate(tmp_path, "s1")
    record = postwire("keys", "dns-record", "--key", private, "--selector", "s1", "--domain", DOMAIN).stdout
    assert record.startswith(f's1._postwire.{DOMAIN}. TXT "v=DKIM1; k=ed25519; p=')
    [keyid] = dns.zone.publish(record)
    toml = f'[[signing]]\nscheme = "rfc9421"\nalg = "ed25519"\nkeyid = "{keyid}"\nkey_file = "{private}"\n'
    path = write_capture(tmp_path, sign_request(tmp_path, toml, URL, BODY, now=T0))
    assert f"verified (rfc9421, keyid {keyid})" in verify(dns, path, T0 + 5)
    assert f"{keyid}." in dns.zone.queries, "the key must come from the DNS server"


def test_rotation_overlap_then_removed_selector(tmp_path, dns):
    keyring = tmp_path / "keys"
    old_record = rotate(keyring, "s1", T0)
    [old_id] = dns.zone.publish(old_record)
    toml = f'[[signing]]\nscheme = "rfc9421"\nalg = "ed25519"\nkeyring = "{keyring}"\n'
    before = write_capture(tmp_path, sign_request(tmp_path, toml, URL, BODY, now=T0 + 10), "before.json")

    new_record = rotate(keyring, "s2", T0 + 1000, overlap=3600)
    during = write_capture(tmp_path, sign_request(tmp_path, toml, URL, BODY, now=T0 + 1060), "during.json")
    after = write_capture(tmp_path, sign_request(tmp_path, toml, URL, BODY, now=T0 + 4700), "after.json")

    # During the overlap both selectors sign: a receiver that only sees the old record accepts…
    assert f"keyid {old_id}" in verify(dns, during, T0 + 1060)
    # …and so does one that only sees the new record.
    dns.zone.remove(old_id)
    [new_id] = dns.zone.publish(new_record)
    assert f"keyid {new_id}" in verify(dns, during, T0 + 1061)
    # After the overlap only the new selector signs.
    assert "verified" in verify(dns, after, T0 + 4700)
    # The removed selector no longer verifies what it signed.
    out = verify(dns, before, T0 + 10, check=1)
    assert f'no key is known for keyid "{old_id}"' in out
    # `dns-record --keyring` prints only the selectors that are still active.
    lines = postwire("keys", "dns-record", "--keyring", keyring, "--now", T0 + 4700).stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == [f"{new_id}."]


def test_cavage_with_long_rsa_record(tmp_path, dns):
    private, _ = generate(tmp_path, "r1", "rsa")
    record = postwire("keys", "dns-record", "--key", private, "--selector", "r1", "--domain", DOMAIN).stdout
    assert '" "' in record, "an RSA record is split into 255-byte strings"
    [keyid] = dns.zone.publish(record)
    toml = f'[[signing]]\nscheme = "cavage"\nkeyid = "{keyid}"\nkey_file = "{private}"\n'
    path = write_capture(tmp_path, sign_request(tmp_path, toml, URL, BODY, now=T0))
    assert f"verified (cavage, keyid {keyid})" in verify(dns, path, T0)


def test_standard_webhooks_v1a_key_from_dns(tmp_path, dns):
    private, _ = generate(tmp_path, "w1")
    record = postwire("keys", "dns-record", "--key", private, "--selector", "w1", "--domain", DOMAIN).stdout
    [keyid] = dns.zone.publish(record)
    toml = f'[[signing]]\nscheme = "standard-webhooks"\nkey_file = "{private}"\n'
    path = write_capture(tmp_path, sign_request(tmp_path, toml, URL, BODY, now=T0))
    assert "verified (standard-webhooks)" in verify(dns, path, T0, "--v1a-keyid", keyid)
    verify(dns, path, T0, check=1)  # without the keyid there is no key to check v1a with


def test_keyid_outside_allowed_domain_is_not_looked_up(tmp_path, dns):
    private, _ = generate(tmp_path, "e1")
    evil = "e1._postwire.evil.test"
    dns.zone.publish(postwire("keys", "dns-record", "--key", private, "--selector", "e1",
                              "--domain", "evil.test").stdout)
    toml = f'[[signing]]\nscheme = "rfc9421"\nalg = "ed25519"\nkeyid = "{evil}"\nkey_file = "{private}"\n'
    path = write_capture(tmp_path, sign_request(tmp_path, toml, URL, BODY, now=T0))
    out = verify(dns, path, T0, check=1)
    assert "outside the allowed key domains" in out
    assert not any("evil" in q for q in dns.zone.queries)


def test_key_record_of_the_wrong_type(tmp_path, dns):
    # The keyid publishes an Ed25519 key; a cavage (RSA-only) request naming it is refused.
    ed_private, _ = generate(tmp_path, "x1")
    [keyid] = dns.zone.publish(postwire("keys", "dns-record", "--key", ed_private, "--selector", "x1",
                                        "--domain", DOMAIN).stdout)
    rsa_private, _ = generate(tmp_path, "rx", "rsa")
    toml = f'[[signing]]\nscheme = "cavage"\nkeyid = "{keyid}"\nkey_file = "{rsa_private}"\n'
    path = write_capture(tmp_path, sign_request(tmp_path, toml, URL, BODY, now=T0))
    out = verify(dns, path, T0, check=1)
    assert f'the key for "{keyid}" is of type ed25519' in out
