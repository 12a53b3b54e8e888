//! The configuration reference says what the parser does: every key the parser accepts (found
//! by asking it: an unknown key's error lists the expected ones) is documented in
//! `docs/configuration.md` under the heading of its table and shown in `postwire.example.toml`
//! (global sections), every documented key is accepted, and every documented default — and
//! every value the example sets — is the value the parser uses when the key is left out.
//!
//! A failure names the key and the place to change, e.g.
//! `plugin_host.upload_dir: accepted by the parser, not documented in docs/configuration.md under "## \`[plugin_host]\`"`.

use std::collections::BTreeSet;
use std::path::Path;

use postwire_core::config::Config;

mod read;
use read::{documented, example_keys};

/// A table of the configuration: where it sits in TOML, the documentation heading that
/// describes it, and the least TOML that makes a probe inside it reach the parser.
struct Table {
    /// Name used in messages (`smtp`, `tenants.<name>.endpoints.<endpoint>`).
    name: &'static str,
    /// The heading in configuration.md whose tables document the keys.
    heading: &'static str,
    /// TOML before the probe key (the table header and required keys after it).
    header: &'static str,
    /// TOML that makes the rest valid (`domains` of the tenant …), appended after the key.
    after: &'static str,
    /// Whether postwire.example.toml shows every key of this table.
    in_example: bool,
}

const SIGNING_SCHEMES: [&str; 5] = ["standard-webhooks", "rfc9421", "cavage", "bearer", "basic"];

fn tables() -> Vec<Table> {
    let global = |name: &'static str, heading: &'static str, header: &'static str| Table {
        name,
        heading,
        header,
        after: "",
        in_example: true,
    };
    let tenant = "\n[tenants.acme]\ndomains = [\"acme.test\"]\n";
    vec![
        global("nats", "## `[nats]`", "[nats]\n"),
        global("smtp", "## `[smtp]`", "[smtp]\n"),
        global("delivery", "## `[delivery]`", "[delivery]\n"),
        global("metrics", "## `[metrics]`", "[metrics]\n"),
        global("verify", "## `[verify]`", "[verify]\n"),
        global("storage", "## `[storage]`", "[storage]\n"),
        global("antivirus", "## `[antivirus]`", "[antivirus]\n"),
        global("spam", "## `[spam]`", "[spam]\n"),
        global("admin", "## `[admin]`", "[admin]\n"),
        global("plugin_host", "## `[plugin_host]`", "[plugin_host]\n"),
        Table {
            in_example: false,
            ..global("ses", "## `[ses]`", "[ses]\n")
        },
        Table {
            in_example: false,
            ..global(
                "admin.tokens[]",
                "### `[[admin.tokens]]`",
                "[[admin.tokens]]\nname = \"n\"\ntoken_env = \"T\"\ntenants = []\n",
            )
        },
        Table {
            name: "tenants.<name>",
            heading: "## `[tenants.<name>]`",
            header: "[tenants.acme]\ndomains = [\"acme.test\"]\n",
            after: "",
            in_example: false,
        },
        Table {
            name: "tenants.<name>.auth",
            heading: "### `[tenants.<name>.auth]`",
            header: "[tenants.acme.auth]\n",
            after: tenant,
            in_example: false,
        },
        Table {
            name: "tenants.<name>.plugins[]",
            heading: "### `[[tenants.<name>.plugins]]`",
            header: "[[tenants.acme.plugins]]\npath = \"x.wasm\"\n",
            after: tenant,
            in_example: false,
        },
        Table {
            name: "tenants.<name>.routes[]",
            heading: "### `[[tenants.<name>.routes]]`",
            header: "[[tenants.acme.routes]]\nname = \"r\"\nrecipients = [\"*\"]\nendpoints = [\"e\"]\n",
            after: tenant,
            in_example: false,
        },
        Table {
            name: "tenants.<name>.endpoints.<endpoint>",
            heading: "### `[tenants.<name>.endpoints.<endpoint>]`",
            header: "[tenants.acme.endpoints.e]\nurl = \"https://hooks.example/in\"\n",
            after: tenant,
            in_example: false,
        },
    ]
}

const PROBE: &str = "zz_not_a_key";

/// The keys the parser accepts in a table: the list its unknown-field error gives.
fn accepted(header: &str, after: &str) -> BTreeSet<String> {
    let text = format!("{header}{PROBE} = 1\n{after}");
    let err = match Config::from_toml(&text) {
        Ok(_) => panic!("the parser accepted the unknown key {PROBE} in:\n{text}"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&format!("unknown field `{PROBE}`")),
        "probing {header:?}: expected an unknown-field error, got: {err}"
    );
    let list = err.split("expected").nth(1).unwrap_or("");
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The parsed configuration of `text` with `key = value` added to the table, or why not.
fn with_value(table: &Table, key: &str, value: &str) -> Result<String, String> {
    let parse = |v: &str| {
        Config::from_toml(&format!("{}{key} = {v}\n{}", table.header, table.after))
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.to_string())
    };
    parse(value).or_else(|first| parse(&format!("{value:?}")).map_err(|_| first))
}

fn baseline(table: &Table) -> String {
    let text = format!("{}{}", table.header, table.after);
    format!(
        "{:?}",
        Config::from_toml(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
    )
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn every_accepted_key_is_documented_with_its_default_and_in_the_example() {
    let doc = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    let example = std::fs::read_to_string(repo().join("postwire.example.toml")).unwrap();
    let example_sections = example_keys(&example);
    let mut problems = Vec::new();

    // Every top-level section the parser knows is one of the tables checked here.
    let known: BTreeSet<&str> = tables()
        .iter()
        .map(|t| t.name.split(['.', '[']).next().unwrap())
        .collect();
    for section in accepted("", "") {
        if !known.contains(section.as_str()) {
            problems.push(format!(
                "[{section}]: a section the parser accepts that this test does not know; add it to tables() in tests/it/config_docs.rs and document it in docs/configuration.md"
            ));
        }
    }

    for table in tables() {
        let keys = accepted(table.header, table.after);
        let Some(rows) = documented(&doc, table.heading) else {
            problems.push(format!(
                "{}: docs/configuration.md has no heading {:?}",
                table.name, table.heading
            ));
            continue;
        };
        let doc_keys: BTreeSet<String> = rows.iter().flat_map(|r| r.keys.clone()).collect();
        for key in &keys {
            if !doc_keys.contains(key) {
                problems.push(format!(
                    "{}.{key}: accepted by the parser, not documented in docs/configuration.md under {:?}",
                    table.name, table.heading
                ));
            }
        }
        for key in doc_keys.difference(&keys) {
            problems.push(format!(
                "{}.{key}: documented in docs/configuration.md under {:?}, but the parser refuses it",
                table.name, table.heading
            ));
        }
        // Defaults: a row with one key and one backticked default must parse to the same
        // configuration as leaving the key out.
        let base = baseline(&table);
        for row in &rows {
            let [key] = row.keys.as_slice() else { continue };
            let Some(default) = row.cells.get(1) else {
                continue;
            };
            let values: Vec<&str> = default.split('`').skip(1).step_by(2).collect();
            let [value] = values.as_slice() else { continue };
            if !keys.contains(key) {
                continue;
            }
            match with_value(&table, key, value) {
                Ok(parsed) if parsed == base => {}
                Ok(_) => problems.push(format!(
                    "{}.{key}: docs/configuration.md gives the default `{value}`, the parser's default differs",
                    table.name
                )),
                Err(e) => problems.push(format!(
                    "{}.{key}: the default `{value}` in docs/configuration.md does not parse: {e}",
                    table.name
                )),
            }
        }
        if table.in_example {
            let shown = example_sections
                .get(table.name)
                .cloned()
                .unwrap_or_default();
            for key in &keys {
                if !shown.contains(key) {
                    problems.push(format!(
                        "{}.{key}: accepted by the parser, not shown in postwire.example.toml under [{}]",
                        table.name, table.name
                    ));
                }
            }
        }
    }

    // The signing schemes: each key of each scheme documented in the signing table, in the
    // row whose second cell names the scheme.
    let heading = "### `[[tenants.<name>.endpoints.<endpoint>.signing]]`";
    let rows = documented(&doc, heading).unwrap_or_default();
    if rows.is_empty() {
        problems.push(format!(
            "tenants.<name>.endpoints.<endpoint>.signing: docs/configuration.md has no table under {heading:?}"
        ));
    }
    for scheme in SIGNING_SCHEMES {
        let header = format!("[[tenants.acme.endpoints.e.signing]]\nscheme = \"{scheme}\"\n");
        let after = "\n[tenants.acme]\ndomains = [\"acme.test\"]\n[tenants.acme.endpoints.e]\nurl = \"https://hooks.example/in\"\n";
        for key in accepted(&header, after) {
            let ok = rows.iter().any(|r| {
                r.keys.contains(&key)
                    && r.cells
                        .get(1)
                        .is_some_and(|c| c.contains(&format!("`{scheme}`")) || c == "all")
            });
            if !ok {
                problems.push(format!(
                    "signing[scheme = \"{scheme}\"].{key}: accepted by the parser, not documented in docs/configuration.md under {heading:?} (a row for `{key}` whose schemes cell names `{scheme}`)"
                ));
            }
        }
    }

    // The example parses, and what it sets in the global sections is the default, except
    // where it says it differs on purpose.
    let cfg = Config::from_toml(&example).unwrap_or_else(|e| panic!("postwire.example.toml: {e}"));
    let defaults = Config::from_toml("").unwrap();
    for (name, got, want) in [
        (
            "nats",
            format!("{:?}", cfg.nats),
            format!("{:?}", defaults.nats),
        ),
        (
            "smtp",
            format!("{:?}", cfg.smtp),
            format!("{:?}", defaults.smtp),
        ),
        (
            "verify",
            format!("{:?}", cfg.verify),
            format!("{:?}", defaults.verify),
        ),
        (
            "antivirus",
            format!("{:?}", cfg.antivirus),
            format!("{:?}", defaults.antivirus),
        ),
        (
            "plugin_host",
            format!("{:?}", cfg.plugin_host),
            format!("{:?}", defaults.plugin_host),
        ),
        (
            "admin",
            format!("{:?}", cfg.admin),
            format!("{:?}", defaults.admin),
        ),
    ] {
        if got != want {
            problems.push(format!(
                "postwire.example.toml [{name}]: a value differs from the parser's default:\n  example: {got}\n  default: {want}"
            ));
        }
    }
    // [delivery] differs in ssrf_allow (the local sink), [storage] in backend (fs for
    // `make run`), [metrics] in listen: compare the rest.
    let mut delivery = cfg.delivery.clone();
    delivery.ssrf_allow = defaults.delivery.ssrf_allow.clone();
    let mut storage = cfg.storage.clone();
    storage.backend = defaults.storage.backend;
    for (name, got, want) in [
        (
            "delivery",
            format!("{delivery:?}"),
            format!("{:?}", defaults.delivery),
        ),
        (
            "storage",
            format!("{storage:?}"),
            format!("{:?}", defaults.storage),
        ),
    ] {
        if got != want {
            problems.push(format!(
                "postwire.example.toml [{name}]: a value differs from the parser's default:\n  example: {got}\n  default: {want}"
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "docs/configuration.md and postwire.example.toml disagree with the parser:\n- {}",
        problems.join("\n- ")
    );
}
