use super::*;
use crate::event::{Auth, DmarcVerdict, IprevVerdict, SpfVerdict, Verdict};

const ENDPOINT: &str = r#"
[tenants.acme.endpoints.e]
url = "https://example.com/"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#;

fn config(routes: &str) -> Config {
    let cfg = Config::from_toml(&format!(
        "[tenants.acme]\ndomains = [\"acme.test\", \"Acme.example\"]\n{routes}{ENDPOINT}"
    ))
    .unwrap();
    cfg.validate().unwrap();
    cfg
}

fn router() -> Router {
    config(
        r#"
[[tenants.acme.routes]]
name = "support"
recipients = ["Support@acme.test"]
endpoints = ["e"]
[[tenants.acme.routes]]
name = "catchall"
recipients = ["*@acme.example"]
endpoints = ["e"]
"#,
    )
    .router()
}

#[test]
fn exact_plus_and_case() {
    let r = router();
    for a in [
        "support@acme.test",
        "SUPPORT@ACME.TEST",
        "support+x@acme.test",
    ] {
        assert_eq!(r.resolve(a).unwrap().route, "support", "{a}");
    }
    assert_eq!(r.resolve("sales@acme.test"), Err(Refusal::NoSuchUser));
    assert_eq!(r.resolve("supportx@acme.test"), Err(Refusal::NoSuchUser));
}

#[test]
fn wildcard_and_foreign_domains() {
    let r = router();
    assert_eq!(r.resolve("anyone@acme.example").unwrap().route, "catchall");
    assert_eq!(r.resolve("x@evil.test"), Err(Refusal::NotOurDomain));
    assert_eq!(r.resolve("nodomain"), Err(Refusal::BadAddress));
}

fn auth(dmarc: Verdict, dkim: &[Verdict]) -> Auth {
    Auth {
        spf: SpfVerdict {
            result: Verdict::Pass,
            domain: "x".into(),
        },
        dkim: dkim
            .iter()
            .map(|v| crate::event::DkimVerdict {
                result: *v,
                domain: None,
                selector: None,
                reason: None,
            })
            .collect(),
        dmarc: DmarcVerdict {
            result: dmarc,
            policy: None,
            aligned: false,
            domain: "x".into(),
            spf_aligned: false,
            dkim_aligned: false,
        },
        authentication_results: String::new(),
        spf_helo: SpfVerdict {
            result: Verdict::None,
            domain: "x".into(),
        },
        iprev: IprevVerdict {
            result: Verdict::Pass,
            ptr: vec![],
        },
        arc: None,
    }
}

const CONDITIONAL: &str = r#"
[[tenants.acme.routes]]
name = "catchall"
recipients = ["*@acme.test"]
endpoints = ["e"]
priority = 100
[[tenants.acme.routes]]
name = "invoices"
recipients = ["/^(billing|inv-[0-9]+)@acme\\.test$/"]
headers = [{ name = "subject", regex = "(?i)invoice" }]
verdicts = { dmarc = ["pass"] }
endpoints = ["e"]
priority = 10
[[tenants.acme.routes]]
name = "lists"
recipients = ["*@acme.test"]
headers = [{ name = "List-Id", regex = "dev\\.lists\\.example" }]
stop = false
endpoints = ["e"]
priority = 1
[[tenants.acme.routes]]
name = "sales"
recipients = ["sales-*@acme.test"]
endpoints = ["e"]
priority = 20
"#;

#[test]
fn conditions_priority_stop_and_fan_out() {
    let r = config(CONDITIONAL).router();
    let h = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let pass = auth(Verdict::Pass, &[Verdict::Pass]);
    let fail = auth(Verdict::Fail, &[]);
    let invoice = h(&[("Subject", "Your INVOICE 42")]);
    let facts = |headers, auth| Facts { headers, auth };
    // All conditions hold: invoices (priority 10) stops the search before catchall (100).
    assert_eq!(
        r.routes_for("acme", "inv-7@acme.test", &facts(&invoice, Some(&pass))),
        ["invoices"]
    );
    // DMARC fails, or no verdicts at all: invoices does not match, catchall takes it.
    assert_eq!(
        r.routes_for("acme", "inv-7@acme.test", &facts(&invoice, Some(&fail))),
        ["catchall"]
    );
    assert_eq!(
        r.routes_for("acme", "billing@acme.test", &facts(&invoice, None)),
        ["catchall"]
    );
    // The subject does not match.
    let other = h(&[("Subject", "hello")]);
    assert_eq!(
        r.routes_for("acme", "billing@acme.test", &facts(&other, Some(&pass))),
        ["catchall"]
    );
    // A list mail fans out: lists (no stop) and then the next match.
    let list = h(&[("List-Id", "<dev.lists.example>"), ("Subject", "invoice")]);
    assert_eq!(
        r.routes_for("acme", "sales-eu@acme.test", &facts(&list, None)),
        ["lists", "sales"]
    );
    assert_eq!(
        r.routes_for("acme", "inv-1@acme.test", &facts(&list, Some(&pass))),
        ["lists", "invoices"]
    );
    // The wrong tenant, or an address of no tenant: nothing.
    assert!(
        r.routes_for("other", "sales-eu@acme.test", &facts(&list, None))
            .is_empty()
    );
    // RCPT time: the first route whose patterns take the recipient, conditions unknown.
    assert_eq!(r.resolve("inv-9@acme.test").unwrap().route, "lists");
}

#[test]
fn rcpt_refuses_what_no_route_could_take() {
    let r = config(
        r#"
[[tenants.acme.routes]]
name = "invoices"
recipients = ["/^inv-[0-9]+@acme\\.test$/"]
headers = [{ name = "Subject", regex = "invoice" }]
endpoints = ["e"]
"#,
    )
    .router();
    assert_eq!(r.resolve("inv-1@acme.test").unwrap().route, "invoices");
    assert_eq!(r.resolve("inv-x@acme.test"), Err(Refusal::NoSuchUser));
}

#[test]
fn shadowing_names_the_route_that_covers() {
    let t = |routes: &str| config_unvalidated(routes);
    // The README's mistake: a route added after the catch-all.
    let cfg = t(r#"
[[tenants.acme.routes]]
name = "catchall"
recipients = ["*@acme.test"]
endpoints = ["e"]
[[tenants.acme.routes]]
name = "sales"
recipients = ["sales@acme.test"]
endpoints = ["e"]
"#);
    let err = cfg.validate().unwrap_err();
    assert_eq!(err.path, "tenants.acme.routes[1]");
    assert!(err.message.contains("catchall"), "{}", err.message);
    // Fixed by priority, or by letting the catch-all go on.
    let by_priority = t(r#"
[[tenants.acme.routes]]
name = "catchall"
recipients = ["*@acme.test"]
endpoints = ["e"]
[[tenants.acme.routes]]
name = "sales"
recipients = ["sales@acme.test"]
endpoints = ["e"]
priority = -1
"#);
    by_priority.validate().unwrap();
    let fan_out = t(r#"
[[tenants.acme.routes]]
name = "catchall"
recipients = ["*@acme.test"]
stop = false
endpoints = ["e"]
[[tenants.acme.routes]]
name = "sales"
recipients = ["sales@acme.test"]
endpoints = ["e"]
"#);
    fan_out.validate().unwrap();
    // A stop route with conditions shadows nothing.
    let conditional = t(r#"
[[tenants.acme.routes]]
name = "lists"
recipients = ["*@acme.test"]
headers = [{ name = "List-Id", regex = "." }]
endpoints = ["e"]
[[tenants.acme.routes]]
name = "sales"
recipients = ["sales@acme.test"]
endpoints = ["e"]
"#);
    conditional.validate().unwrap();
    // Two routes together may cover a third.
    let two = t(r#"
[[tenants.acme.routes]]
name = "a"
recipients = ["sales-*@acme.test"]
endpoints = ["e"]
[[tenants.acme.routes]]
name = "b"
recipients = ["*@acme.example"]
endpoints = ["e"]
[[tenants.acme.routes]]
name = "c"
recipients = ["sales-eu@acme.test", "x@acme.example"]
endpoints = ["e"]
"#);
    let err = two.validate().unwrap_err();
    assert_eq!(err.path, "tenants.acme.routes[2]");
    assert!(
        err.message.contains("a, b") || err.message.contains("a and b"),
        "{}",
        err.message
    );
}

fn config_unvalidated(routes: &str) -> Config {
    Config::from_toml(&format!(
        "[tenants.acme]\ndomains = [\"acme.test\", \"acme.example\"]\n{routes}{ENDPOINT}"
    ))
    .unwrap()
}

#[test]
fn bad_conditions_are_refused_with_their_path() {
    let cases = [
        (
            "recipients = [\"/(x/\"]\nendpoints = [\"e\"]\n",
            "tenants.acme.routes[0].recipients[0]",
        ),
        (
            "recipients = [\"*\"]\nheaders = [{ name = \"Subject\", regex = \"(\" }]\nendpoints = [\"e\"]\n",
            "tenants.acme.routes[0].headers[0].regex",
        ),
        (
            "recipients = [\"*\"]\nheaders = [{ name = \"\", regex = \"x\" }]\nendpoints = [\"e\"]\n",
            "tenants.acme.routes[0].headers[0].name",
        ),
        (
            "recipients = [\"*\"]\nverdicts = { dmarc = [\"passed\"] }\nendpoints = [\"e\"]\n",
            "tenants.acme.routes[0].verdicts.dmarc",
        ),
    ];
    for (body, path) in cases {
        let cfg = config_unvalidated(&format!("[[tenants.acme.routes]]\nname = \"r\"\n{body}"));
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.path, path, "{body}");
    }
}
