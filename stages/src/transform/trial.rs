//! A dry run of a candidate plugin version (`postwire plugin try`): the tenant's active
//! chain and the chain with the candidate in place of (or added as) that plugin run over the
//! same event, and the two outcomes are compared. Nothing is delivered or recorded.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use super::{CallTags, Outcome, PluginSpec, TransformError, Transformer};

/// Where the candidate went in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// In place of the plugin at `index` (its config kept), whose file was `file`.
    Replaced { index: usize, file: PathBuf },
    /// Appended last (the chain has no plugin of that name).
    Added,
}

/// The chain with `candidate` in place of the first plugin `same` recognises, keeping its
/// config, or appended last with no config when there is none.
pub fn candidate_chain(
    active: &[PluginSpec],
    same: impl Fn(&Path) -> bool,
    candidate: &Path,
) -> (Vec<PluginSpec>, Placement) {
    let mut chain = active.to_vec();
    match chain.iter_mut().enumerate().find(|(_, p)| same(&p.path)) {
        Some((index, p)) => {
            let file = std::mem::replace(&mut p.path, candidate.to_path_buf());
            (chain, Placement::Replaced { index, file })
        }
        None => {
            chain.push(PluginSpec {
                path: candidate.to_path_buf(),
                config: Value::Null,
            });
            (chain, Placement::Added)
        }
    }
}

/// One difference between the active and the candidate outcome, at a JSON pointer
/// (`/payload/message/subject`); `before` or `after` is absent for an added or removed value.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Change {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// A chain's outcome as JSON: `{"outcome":"deliver","payload":…}`, `{"outcome":"drop",
/// "reason":…}`, `{"outcome":"route","routes":{name: payload}}` or `{"outcome":"error",
/// "kind":…,"error":…}`.
pub fn outcome_json(result: &Result<Outcome, TransformError>) -> Value {
    match result {
        Ok(Outcome::Deliver(v)) => json!({"outcome": "deliver", "payload": v}),
        Ok(Outcome::Drop { reason }) => json!({"outcome": "drop", "reason": reason}),
        Ok(Outcome::Route(routes)) => {
            let routes: serde_json::Map<String, Value> = routes.iter().cloned().collect();
            json!({"outcome": "route", "routes": routes})
        }
        Err(e) => json!({"outcome": "error", "kind": e.kind(), "error": e.to_string()}),
    }
}

/// The differences from `before` to `after`, depth first; arrays compare by position.
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(String::new(), before, after, &mut out);
    out
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn walk(path: String, a: &Value, b: &Value, out: &mut Vec<Change>) {
    if a == b {
        return;
    }
    let change = |path: String, before: Option<&Value>, after: Option<&Value>| Change {
        path,
        before: before.cloned(),
        after: after.cloned(),
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}/{}", escape(k));
                match y.get(k) {
                    Some(vb) => walk(p, va, vb, out),
                    None => out.push(change(p, Some(va), None)),
                }
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.push(change(format!("{path}/{}", escape(k)), None, Some(vb)));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}/{i}");
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => walk(p, va, vb, out),
                    (va, vb) => out.push(change(p, va, vb)),
                }
            }
        }
        _ => out.push(change(path, Some(a), Some(b))),
    }
}

/// Both chains over one event.
#[derive(Debug, Clone)]
pub struct MailTrial {
    /// [`outcome_json`] of the active chain and of the candidate chain.
    pub active: Value,
    pub candidate: Value,
    /// From the active outcome to the candidate's; empty when they are the same.
    pub changes: Vec<Change>,
    /// What the candidate chain's plugins wrote to stdout/stderr.
    pub output: String,
}

/// Runs the active and the candidate chain over `event` (synchronous: call it on a blocking
/// thread, as plugins writing to stdout/stderr need).
pub fn try_chains(
    host: &Transformer,
    active: &[PluginSpec],
    candidate: &[PluginSpec],
    event: &Value,
    tags: &CallTags<'_>,
) -> MailTrial {
    let before = outcome_json(&host.run_chain_traced(active, event, tags).result);
    let run = host.run_chain_traced(candidate, event, tags);
    let after = outcome_json(&run.result);
    MailTrial {
        changes: diff(&before, &after),
        active: before,
        candidate: after,
        output: run.output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_each_changed_added_and_removed_value() {
        let a = json!({"outcome":"deliver","payload":{"s":"a","k":[1,2],"gone":true,"x/y":1}});
        let b = json!({"outcome":"deliver","payload":{"s":"b","k":[1],"new":"n","x/y":2}});
        let paths: Vec<String> = diff(&a, &b).into_iter().map(|c| c.path).collect();
        assert_eq!(
            paths,
            [
                "/payload/s",
                "/payload/k/1",
                "/payload/gone",
                "/payload/x~1y",
                "/payload/new"
            ]
        );
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn candidate_replaces_the_plugin_of_its_name_or_is_added() {
        let spec = |p: &str| PluginSpec {
            path: p.into(),
            config: json!({"c": p}),
        };
        let active = [spec("/p/stamp.wasm"), spec("/p/redact.wasm")];
        let named = |n: &'static str| move |p: &Path| super::super::plugin_name(p) == n;
        let (chain, placed) =
            candidate_chain(&active, named("redact"), Path::new("/t/redact.wasm"));
        assert_eq!(chain[1].path, Path::new("/t/redact.wasm"));
        assert_eq!(chain[1].config, json!({"c": "/p/redact.wasm"}));
        assert_eq!(
            placed,
            Placement::Replaced {
                index: 1,
                file: "/p/redact.wasm".into()
            }
        );
        let (chain, placed) = candidate_chain(&active, named("slack"), Path::new("/t/slack.wasm"));
        assert_eq!((chain.len(), placed), (3, Placement::Added));
    }
}
