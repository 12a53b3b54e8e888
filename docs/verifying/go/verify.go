// Verifying postwire webhooks in Go with the standard library alone (Go 1.19+): Standard
// Webhooks v1 and v1a, RFC 9421 (Ed25519) with Content-Digest, draft-cavage (RSA), keys
// from DNS. Run as a program it reads a test case as JSON on stdin (docs/verifying.md).
package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// now is the current unix time (time.Now().Unix()); a parameter so tests can move the clock.
const tolerance = 300 // seconds, either way

var components = []string{"@method", "@target-uri", "content-digest", "content-type", "webhook-id"}

func fresh(ts, now int64) error {
	if ts < now-tolerance || ts > now+tolerance {
		return errors.New("timestamp outside the tolerance")
	}
	return nil
}

// dnsKey returns k= and the decoded p= of the DKIM-style TXT record named keyid, only under
// domain; nameserver ("ip:port") replaces the system's resolver when set.
func dnsKey(keyid, domain, nameserver string) (string, []byte, error) {
	if !strings.HasSuffix(keyid, "._postwire."+domain) {
		return "", nil, fmt.Errorf("keyid %s is not under %s", keyid, domain)
	}
	resolver := net.DefaultResolver
	if nameserver != "" {
		resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "udp", nameserver)
		}}
	}
	txts, err := resolver.LookupTXT(context.Background(), keyid)
	if err != nil {
		return "", nil, err
	}
	tags := map[string]string{"k": "rsa"}
	for _, tag := range strings.Split(strings.Join(txts, ""), ";") {
		if name, value, ok := strings.Cut(tag, "="); ok {
			tags[strings.TrimSpace(name)] = strings.TrimSpace(value)
		}
	}
	p, err := base64.StdEncoding.DecodeString(tags["p"])
	return tags["k"], p, err
}

// VerifyStandard checks Standard Webhooks v1 (secret "whsec_…") or v1a (publicKey "whpk_…").
func VerifyStandard(body []byte, h http.Header, secret, publicKey string, now int64) error {
	ts, err := strconv.ParseInt(h.Get("Webhook-Timestamp"), 10, 64)
	if err != nil {
		return err
	}
	if err := fresh(ts, now); err != nil {
		return err
	}
	signed := append([]byte(fmt.Sprintf("%s.%d.", h.Get("Webhook-Id"), ts)), body...)
	for _, sig := range strings.Fields(h.Get("Webhook-Signature")) {
		version, value, _ := strings.Cut(sig, ",")
		given, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			continue
		}
		if version == "v1" && secret != "" {
			key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
			mac := hmac.New(sha256.New, key)
			mac.Write(signed)
			if hmac.Equal(mac.Sum(nil), given) {
				return nil
			}
		}
		if version == "v1a" && publicKey != "" {
			key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(publicKey, "whpk_"))
			if len(key) == ed25519.PublicKeySize && ed25519.Verify(key, signed, given) {
				return nil
			}
		}
	}
	return errors.New("no valid signature")
}

func contentDigestOK(h http.Header, body []byte) bool {
	sum := sha256.Sum256(body)
	return h.Get("Content-Digest") == "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":"
}

// VerifyRFC9421 checks one RFC 9421 signature with an Ed25519 key from DNS. postwire
// serialises Signature-Input canonically: the @signature-params line is the member as received.
func VerifyRFC9421(method, fullURL string, h http.Header, body []byte, domain string, now int64, nameserver string) error {
	label, params, _ := strings.Cut(h.Get("Signature-Input"), "=")
	params = strings.Split(params, ", ")[0]
	param := func(name string) string {
		m := regexp.MustCompile(`;` + name + `="?([^";]*)"?`).FindStringSubmatch(params)
		if m == nil {
			return ""
		}
		return m[1]
	}
	covered := strings.Fields(strings.Trim(params[:strings.Index(params, ")")+1], "()"))
	for _, c := range components {
		found := false
		for _, got := range covered {
			found = found || got == `"`+c+`"`
		}
		if !found {
			return fmt.Errorf("%s is not covered", c)
		}
	}
	if param("tag") != "postwire" {
		return errors.New("wrong tag")
	}
	created, _ := strconv.ParseInt(param("created"), 10, 64)
	if err := fresh(created, now); err != nil {
		return err
	}
	if expires, err := strconv.ParseInt(param("expires"), 10, 64); err == nil && now > expires {
		return errors.New("expired")
	}
	if !contentDigestOK(h, body) {
		return errors.New("content-digest mismatch")
	}
	k, pub, err := dnsKey(param("keyid"), domain, nameserver)
	if err != nil {
		return err
	}
	if k != "ed25519" || len(pub) != ed25519.PublicKeySize { // the key decides the algorithm
		return errors.New("not an Ed25519 key")
	}
	var base strings.Builder
	for _, c := range covered {
		name := strings.Trim(c, `"`)
		value := h.Get(name)
		switch name {
		case "@method":
			value = method
		case "@target-uri":
			value = fullURL
		}
		fmt.Fprintf(&base, "%s: %s\n", c, value)
	}
	fmt.Fprintf(&base, "\"@signature-params\": %s", params)
	m := regexp.MustCompile(regexp.QuoteMeta(label) + `=:([^:]*):`).FindStringSubmatch(h.Get("Signature"))
	if m == nil {
		return errors.New("no signature for " + label)
	}
	sig, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil || !ed25519.Verify(pub, []byte(base.String()), sig) {
		return errors.New("bad signature")
	}
	return nil
}

// VerifyCavage checks a draft-cavage rsa-sha256 signature with the RSA key from DNS and the
// RFC 3230 Digest.
func VerifyCavage(method, fullURL string, h http.Header, body []byte, domain string, now int64, nameserver string) error {
	params := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+)="([^"]*)"`).FindAllStringSubmatch(h.Get("Signature"), -1) {
		params[m[1]] = m[2]
	}
	names := strings.Fields(params["headers"])
	for _, required := range []string{"(request-target)", "host", "date", "digest"} {
		found := false
		for _, n := range names {
			found = found || n == required
		}
		if !found {
			return fmt.Errorf("%s is not signed", required)
		}
	}
	date, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return err
	}
	if err := fresh(date.Unix(), now); err != nil {
		return err
	}
	alg, digest, _ := strings.Cut(h.Get("Digest"), "=")
	sum := sha256.Sum256(body)
	if !strings.EqualFold(alg, "sha-256") || digest != base64.StdEncoding.EncodeToString(sum[:]) {
		return errors.New("digest mismatch")
	}
	k, der, err := dnsKey(params["keyId"], domain, nameserver)
	if err != nil {
		return err
	}
	parsed, err := x509.ParsePKIXPublicKey(der)
	key, ok := parsed.(*rsa.PublicKey)
	if err != nil || k != "rsa" || !ok {
		return errors.New("not an RSA key")
	}
	u, err := url.Parse(fullURL)
	if err != nil {
		return err
	}
	lines := make([]string, len(names))
	for i, n := range names {
		value := h.Get(n)
		switch n {
		case "(request-target)":
			value = strings.ToLower(method) + " " + u.RequestURI()
		case "host":
			if value == "" {
				value = u.Host
			}
		}
		lines[i] = n + ": " + value
	}
	signed := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	sig, err := base64.StdEncoding.DecodeString(params["signature"])
	if err != nil || rsa.VerifyPKCS1v15(key, crypto.SHA256, signed[:], sig) != nil {
		return errors.New("bad signature")
	}
	return nil
}

type testCase struct {
	Scheme  string `json:"scheme"`
	Request struct {
		Method  string     `json:"method"`
		URL     string     `json:"url"`
		Headers [][]string `json:"headers"`
		Body    string     `json:"body_base64"`
	} `json:"request"`
	Now       int64  `json:"now"`
	Secret    string `json:"secret"`
	PublicKey string `json:"public_key"`
	DNSServer string `json:"dns_server"`
	Domain    string `json:"domain"`
}

func main() {
	var c testCase
	if err := json.NewDecoder(os.Stdin).Decode(&c); err != nil {
		fmt.Println("refused: bad case:", err)
		os.Exit(1)
	}
	h := http.Header{}
	for _, pair := range c.Request.Headers {
		h.Add(pair[0], pair[1])
	}
	body, _ := base64.StdEncoding.DecodeString(c.Request.Body)
	var err error
	switch c.Scheme {
	case "v1":
		err = VerifyStandard(body, h, c.Secret, "", c.Now)
	case "v1a":
		err = VerifyStandard(body, h, "", c.PublicKey, c.Now)
	case "rfc9421":
		err = VerifyRFC9421(c.Request.Method, c.Request.URL, h, body, c.Domain, c.Now, c.DNSServer)
	default:
		err = VerifyCavage(c.Request.Method, c.Request.URL, h, body, c.Domain, c.Now, c.DNSServer)
	}
	if err != nil {
		fmt.Println("refused:", err)
		os.Exit(1)
	}
	fmt.Println("verified")
}
