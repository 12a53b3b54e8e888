//! Secrets in tenant configuration as the admin API shows and takes it: a secret reads as
//! `"********"` and a `"********"` sent back keeps the stored one; and the fields that name
//! something on the servers (variables, key files) rather than hold a secret.

use postwire_core::tenant_config::TenantConfig;
use serde_json::Value;

/// What a secret reads as.
pub const REDACTED: &str = "********";
const SECRET_KEYS: [&str; 3] = ["secret", "password", "token"];

/// Replaces every secret value with [`REDACTED`].
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str()) && val.is_string() {
                    *val = Value::String(REDACTED.into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Puts the stored secret back wherever `new` holds [`REDACTED`] at the same place.
pub fn unredact(new: &mut Value, old: &Value) {
    match (new, old) {
        (Value::Object(n), Value::Object(o)) => {
            for (k, val) in n.iter_mut() {
                match o.get(k) {
                    Some(ov) if val.as_str() == Some(REDACTED) => *val = ov.clone(),
                    Some(ov) => unredact(val, ov),
                    None => {}
                }
            }
        }
        (Value::Array(n), Value::Array(o)) => {
            for (nv, ov) in n.iter_mut().zip(o) {
                if nv.as_str() == Some(REDACTED) {
                    *nv = ov.clone();
                } else {
                    unredact(nv, ov);
                }
            }
        }
        _ => {}
    }
}

/// Fields whose value names something on the servers rather than holding a secret.
const SERVER_REFS: [&str; 6] = [
    "secret_env",
    "key_env",
    "token_env",
    "password_env",
    "key_file",
    "keyring",
];

/// (endpoint, field, value) of every server reference in a tenant's endpoints.
pub fn server_refs(t: &TenantConfig) -> std::collections::BTreeSet<(String, String, String)> {
    fn walk(ep: &str, v: &Value, out: &mut std::collections::BTreeSet<(String, String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, val) in m {
                    match val {
                        Value::String(s) if SERVER_REFS.contains(&k.as_str()) => {
                            out.insert((ep.to_string(), k.clone(), s.clone()));
                        }
                        other => walk(ep, other, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(ep, x, out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for (name, e) in &t.endpoints {
        walk(
            name,
            &serde_json::to_value(e).unwrap_or(Value::Null),
            &mut out,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_hidden_and_kept_when_sent_back_hidden() {
        let stored = json!({"url": "https://x", "secret": "whsec_abc",
            "signing": [{"scheme": "bearer", "token": "t0k"}, {"scheme": "basic", "username": "u", "password": "p"}]});
        let mut shown = stored.clone();
        redact(&mut shown);
        assert_eq!(shown["secret"], REDACTED);
        assert_eq!(shown["signing"][0]["token"], REDACTED);
        assert_eq!(shown["signing"][1]["password"], REDACTED);
        assert_eq!(shown["signing"][1]["username"], "u");
        let mut back = shown.clone();
        back["url"] = json!("https://y");
        unredact(&mut back, &stored);
        assert_eq!(back["secret"], "whsec_abc");
        assert_eq!(back["signing"][0]["token"], "t0k");
        assert_eq!(back["url"], "https://y");
        // A new secret replaces the old one.
        let mut changed = shown.clone();
        changed["secret"] = json!("whsec_new");
        unredact(&mut changed, &stored);
        assert_eq!(changed["secret"], "whsec_new");
    }
}
