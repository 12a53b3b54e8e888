//! What the CLI turns its arguments into before it calls the admin API with [`Client`]: request
//! bodies (`tenants route`, `tenants put`, `api --data`) and the one-line rows it prints for
//! list answers. Kept next to the client so the binary only parses arguments.
//!
//! [`Client`]: crate::client::Client

use serde_json::{Map, Value, json};

use crate::client::ClientError;

/// The arguments of `postwire tenants route`, as given.
#[derive(Debug, Default, Clone)]
pub struct RouteArgs {
    pub recipients: Vec<String>,
    pub endpoints: Vec<String>,
    /// `Name:regex` each.
    pub headers: Vec<String>,
    /// `check=result` each.
    pub verdicts: Vec<String>,
    pub priority: Option<i32>,
    pub before: Option<String>,
    pub no_stop: bool,
}

/// The JSON body of `PUT …/routes/{route}`.
pub fn route_body(a: RouteArgs) -> Result<Value, ClientError> {
    let mut body = json!({"recipients": a.recipients, "endpoints": a.endpoints});
    let mut conds = Vec::new();
    for h in a.headers {
        let (name, regex) = h
            .split_once(':')
            .ok_or_else(|| ClientError::Usage(format!("--header {h:?}: write Name:regex")))?;
        conds.push(json!({"name": name.trim(), "regex": regex}));
    }
    if !conds.is_empty() {
        body["headers"] = Value::Array(conds);
    }
    let mut v = Map::new();
    for item in a.verdicts {
        let (check, result) = item
            .split_once('=')
            .ok_or_else(|| ClientError::Usage(format!("--verdict {item:?}: write check=result")))?;
        let list = v
            .entry(check.trim().to_ascii_lowercase())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = list {
            a.push(Value::String(result.trim().to_ascii_lowercase()));
        }
    }
    if !v.is_empty() {
        body["verdicts"] = Value::Object(v);
    }
    if let Some(p) = a.priority {
        body["priority"] = p.into();
    }
    if let Some(b) = a.before {
        body["before"] = b.into();
    }
    if a.no_stop {
        body["stop"] = false.into();
    }
    Ok(body)
}

/// The body of `PUT /api/v1/tenants/{t}` from a file's text: JSON, or TOML with the fields of
/// `[tenants.<name>]` at the top level. `name` names the file in errors.
pub fn tenant_body(text: &str, name: &str) -> Result<Value, ClientError> {
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    let t = toml::from_str::<toml::Value>(text)
        .map_err(|e| ClientError::Usage(format!("{name} is neither JSON nor TOML: {e}")))?;
    serde_json::to_value(t).map_err(|e| ClientError::Usage(e.to_string()))
}

/// The body of `postwire api … --data`: JSON, or `@file` holding JSON.
pub fn data_body(data: &str) -> Result<Value, ClientError> {
    let text = match data.strip_prefix('@') {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| ClientError::Usage(format!("cannot read {f}: {e}")))?,
        None => data.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| ClientError::Usage(format!("--data is not JSON: {e}")))
}

/// One line of `tenants list`: name, domains, counts, and who wrote it last.
pub fn tenant_row(t: &Value) -> String {
    format!(
        "{}\t{}\troutes {}\tendpoints {}\t{} by {}",
        t["name"].as_str().unwrap_or(""),
        t["domains"]
            .as_array()
            .map(|d| d
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default(),
        t["routes"],
        t["endpoints"],
        t["source"].as_str().unwrap_or(""),
        t["updated_by"].as_str().unwrap_or(""),
    )
}

/// One line of `tenants routes`: name, priority, stop or continue, recipients, shadowing.
pub fn route_row(r: &Value) -> String {
    let shadow = r["shadowed_by"].as_array().filter(|a| !a.is_empty());
    format!(
        "{}\tpriority {}\t{}\t{}{}",
        r["name"].as_str().unwrap_or(""),
        r["priority"].as_i64().unwrap_or(0),
        if r["stop"].as_bool().unwrap_or(true) {
            "stop"
        } else {
            "continue"
        },
        r["recipients"],
        shadow
            .map(|s| format!("\tSHADOWED by {}", Value::Array(s.clone())))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_body_carries_conditions_and_placement() {
        let body = route_body(RouteArgs {
            recipients: vec!["sales@acme.test".into()],
            endpoints: vec!["main".into()],
            headers: vec!["Subject:(?i)invoice".into()],
            verdicts: vec!["DMARC=Pass".into(), "dmarc=none".into()],
            priority: Some(-10),
            before: Some("catchall".into()),
            no_stop: true,
        })
        .expect("body");
        assert_eq!(
            body,
            json!({"recipients": ["sales@acme.test"], "endpoints": ["main"],
                "headers": [{"name": "Subject", "regex": "(?i)invoice"}],
                "verdicts": {"dmarc": ["pass", "none"]}, "priority": -10,
                "before": "catchall", "stop": false})
        );
        let plain = route_body(RouteArgs {
            recipients: vec!["*".into()],
            endpoints: vec!["e".into()],
            ..RouteArgs::default()
        })
        .expect("body");
        assert_eq!(plain, json!({"recipients": ["*"], "endpoints": ["e"]}));
    }

    #[test]
    fn malformed_conditions_are_usage_errors() {
        for (headers, verdicts) in [
            (vec!["Subject".to_string()], vec![]),
            (vec![], vec!["dmarc".to_string()]),
        ] {
            let e = route_body(RouteArgs {
                headers,
                verdicts,
                ..RouteArgs::default()
            })
            .expect_err("refused");
            assert!(matches!(e, ClientError::Usage(m) if m.contains("write")));
        }
    }

    #[test]
    fn a_tenant_file_is_json_or_toml() {
        let toml = tenant_body("domains = [\"acme.test\"]\n", "acme.toml").expect("toml");
        let json = tenant_body("{\"domains\": [\"acme.test\"]}", "acme.json").expect("json");
        assert_eq!(toml, json);
        let e = tenant_body("domains = [", "bad.toml").expect_err("neither");
        assert!(
            e.to_string()
                .starts_with("bad.toml is neither JSON nor TOML"),
            "{e}"
        );
        assert!(data_body("{").is_err());
        assert_eq!(data_body("{\"a\": 1}").expect("json"), json!({"a": 1}));
    }

    #[test]
    fn rows_name_what_a_list_shows() {
        let t = json!({"name": "acme", "domains": ["a.test", "b.test"], "routes": 2,
            "endpoints": 1, "source": "api", "updated_by": "admin"});
        assert_eq!(
            tenant_row(&t),
            "acme\ta.test,b.test\troutes 2\tendpoints 1\tapi by admin"
        );
        let r = json!({"name": "sales", "priority": -1, "stop": false,
            "recipients": ["sales@acme.test"], "shadowed_by": ["catchall"]});
        assert_eq!(
            route_row(&r),
            "sales\tpriority -1\tcontinue\t[\"sales@acme.test\"]\tSHADOWED by [\"catchall\"]"
        );
    }
}
