# Verifying postwire webhooks in Ruby with the standard library alone (openssl, resolv):
# Standard Webhooks v1 and v1a, RFC 9421 (Ed25519) with Content-Digest, draft-cavage (RSA),
# keys from DNS. Run as a script it reads a test case as JSON on stdin (docs/verifying.md).
require "base64"
require "json"
require "openssl"
require "resolv"
require "time"
require "uri"

module PostwireVerify
  TOLERANCE = 300 # seconds, either way
  COMPONENTS = %w[@method @target-uri content-digest content-type webhook-id].freeze
  # DER prefix of an Ed25519 SubjectPublicKeyInfo: prepend it to the 32 raw key bytes.
  ED25519_SPKI = ["302a300506032b6570032100"].pack("H*")

  module_function

  def fresh!(ts, now)
    raise "timestamp outside the tolerance" if (now - ts).abs > TOLERANCE
  end

  def ed25519_key(raw)
    raise "not a 32-byte Ed25519 key" unless raw.bytesize == 32
    OpenSSL::PKey.read(ED25519_SPKI + raw)
  end

  # [k, p bytes] of the DKIM-style TXT record named keyid, only under domain.
  def dns_key(keyid, domain, nameserver = nil)
    raise "keyid #{keyid} is not under #{domain}" unless keyid.end_with?("._postwire.#{domain}")
    config = nameserver && { nameserver_port: [[nameserver.split(":")[0], Integer(nameserver.split(":")[1])]] }
    record = Resolv::DNS.open(config) do |dns|
      dns.getresources(keyid, Resolv::DNS::Resource::IN::TXT).map { |r| r.strings.join }.join
    end
    tags = record.split(";").select { |t| t.include?("=") }.to_h { |t| t.split("=", 2).map(&:strip) }
    raise "no key at #{keyid}" unless tags["p"]
    [tags.fetch("k", "rsa"), Base64.strict_decode64(tags["p"])]
  end

  # Standard Webhooks v1 (secret "whsec_…") or v1a (public_key "whpk_…"); headers lower-case.
  def verify_standard(body, headers, now, secret: nil, public_key: nil)
    ts = Integer(headers["webhook-timestamp"])
    fresh!(ts, now)
    signed = "#{headers["webhook-id"]}.#{ts}.".b + body.b
    headers["webhook-signature"].split(" ").each do |sig|
      version, value = sig.split(",", 2)
      given = Base64.decode64(value.to_s)
      if version == "v1" && secret
        key = Base64.decode64(secret.delete_prefix("whsec_"))
        want = OpenSSL::HMAC.digest("SHA256", key, signed)
        return true if OpenSSL.fixed_length_secure_compare(want, given) rescue false
      elsif version == "v1a" && public_key
        key = ed25519_key(Base64.decode64(public_key.delete_prefix("whpk_")))
        return true if key.verify(nil, given, signed) rescue false
      end
    end
    raise "no valid signature"
  end

  def content_digest_ok?(headers, body)
    headers["content-digest"] == "sha-256=:#{Base64.strict_encode64(OpenSSL::Digest::SHA256.digest(body))}:"
  end

  # RFC 9421 with an Ed25519 key from DNS; postwire serialises Signature-Input canonically,
  # so the @signature-params line is the member as received.
  def verify_rfc9421(method, url, headers, body, domain, now, nameserver = nil)
    label, params = headers["signature-input"].split("=", 2)
    params = params.split(", ").first
    param = ->(name) { params[/;#{name}="?([^";]*)"?/, 1] }
    covered = params[/\A\(([^)]*)\)/, 1].split(" ")
    COMPONENTS.each { |c| raise "#{c} is not covered" unless covered.include?("\"#{c}\"") }
    raise "wrong tag" unless param.("tag") == "postwire"
    fresh!(Integer(param.("created")), now)
    raise "expired" if param.("expires") && now > Integer(param.("expires"))
    raise "content-digest mismatch" unless content_digest_ok?(headers, body)
    k, pub = dns_key(param.("keyid"), domain, nameserver)
    raise "not an Ed25519 key" unless k == "ed25519" # the key decides the algorithm
    values = headers.merge("@method" => method, "@target-uri" => url)
    base = covered.map { |c| "#{c}: #{values[c.delete('"')]}" }.join("\n") + "\n\"@signature-params\": #{params}"
    sig = headers["signature"][/#{Regexp.escape(label)}=:([^:]*):/, 1] or raise "no signature for #{label}"
    ed25519_key(pub).verify(nil, Base64.strict_decode64(sig), base) or raise "bad signature"
  rescue OpenSSL::PKey::PKeyError
    raise "bad signature"
  end

  # draft-cavage rsa-sha256 with the RSA key from DNS and the RFC 3230 Digest.
  def verify_cavage(method, url, headers, body, domain, now, nameserver = nil)
    params = headers["signature"].scan(/(\w+)="([^"]*)"/).to_h
    names = params["headers"].split(" ")
    %w[(request-target) host date digest].each { |h| raise "#{h} is not signed" unless names.include?(h) }
    fresh!(Time.httpdate(headers["date"]).to_i, now)
    alg, digest = headers["digest"].split("=", 2)
    unless alg.casecmp?("sha-256") && digest == Base64.strict_encode64(OpenSSL::Digest::SHA256.digest(body))
      raise "digest mismatch"
    end
    k, der = dns_key(params["keyId"], domain, nameserver)
    key = OpenSSL::PKey.read(der)
    raise "not an RSA key" unless k == "rsa" && key.is_a?(OpenSSL::PKey::RSA)
    uri = URI(url)
    values = headers.merge("(request-target)" => "#{method.downcase} #{uri.request_uri}")
    signed = names.map { |h| "#{h}: #{values[h]}" }.join("\n")
    key.verify("SHA256", Base64.strict_decode64(params["signature"]), signed) or raise "bad signature"
  end
end

if $PROGRAM_NAME == __FILE__
  c = JSON.parse($stdin.read)
  req = c["request"]
  headers = req["headers"].to_h { |name, value| [name.downcase, value] }
  body = Base64.strict_decode64(req["body_base64"])
  begin
    case c["scheme"]
    when "v1" then PostwireVerify.verify_standard(body, headers, c["now"], secret: c["secret"])
    when "v1a" then PostwireVerify.verify_standard(body, headers, c["now"], public_key: c["public_key"])
    when "rfc9421"
      PostwireVerify.verify_rfc9421(req["method"], req["url"], headers, body, c["domain"], c["now"], c["dns_server"])
    else
      PostwireVerify.verify_cavage(req["method"], req["url"], headers, body, c["domain"], c["now"], c["dns_server"])
    end
  rescue StandardError => e
    puts "refused: #{e.message}"
    exit 1
  end
  puts "verified"
end
