//! What a route asks of a mail besides its recipient: headers (name + regular expression)
//! and authentication verdicts. Checked by the worker, which has the parsed headers and the
//! verdicts; at RCPT time only recipients are known.

use serde::{Deserialize, Serialize};

use crate::event::{Auth, Verdict};

/// `{ name = "Subject", regex = "(?i)invoice" }`: some header of that name (any case) has a
/// value (unfolded, decoded) the expression finds a match in.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderCondition {
    pub name: String,
    pub regex: String,
}

/// Accepted verdicts per check (`pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`,
/// `permerror`): `dmarc = ["pass"]`. A check left out accepts anything; `dkim` holds when any
/// signature has one of the listed results. A route with verdicts never matches mail that was
/// not verified (`[verify]` off).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerdictCondition {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spf: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dkim: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dmarc: Vec<String>,
}

/// The verdict names a condition may list.
pub const VERDICT_NAMES: [&str; 7] = [
    "pass",
    "fail",
    "softfail",
    "neutral",
    "none",
    "temperror",
    "permerror",
];

impl VerdictCondition {
    pub fn is_empty(&self) -> bool {
        self.spf.is_empty() && self.dkim.is_empty() && self.dmarc.is_empty()
    }

    /// `(check, value)` of the first name that is not a verdict.
    pub fn unknown(&self) -> Option<(&'static str, &str)> {
        [
            ("spf", &self.spf),
            ("dkim", &self.dkim),
            ("dmarc", &self.dmarc),
        ]
        .into_iter()
        .find_map(|(k, list)| {
            list.iter()
                .find(|v| !VERDICT_NAMES.contains(&v.to_ascii_lowercase().as_str()))
                .map(|v| (k, v.as_str()))
        })
    }

    pub fn holds(&self, auth: Option<&Auth>) -> bool {
        if self.is_empty() {
            return true;
        }
        let Some(a) = auth else { return false };
        let ok = |list: &[String], v: Verdict| {
            list.is_empty() || list.iter().any(|n| n.eq_ignore_ascii_case(v.as_str()))
        };
        ok(&self.spf, a.spf.result)
            && ok(&self.dmarc, a.dmarc.result)
            && (self.dkim.is_empty() || a.dkim.iter().any(|d| ok(&self.dkim, d.result)))
    }
}

/// A header condition, compiled.
#[derive(Debug, Clone)]
pub struct HeaderRule {
    pub name: String,
    pub regex: regex::Regex,
}

impl HeaderRule {
    pub fn compile(c: &HeaderCondition) -> Result<HeaderRule, String> {
        Ok(HeaderRule {
            name: c.name.trim().to_string(),
            regex: super::pattern::compile(&c.regex, false)?,
        })
    }

    pub fn holds(&self, headers: &[(String, String)]) -> bool {
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(&self.name) && self.regex.is_match(v))
    }
}

/// What the worker knows of a mail when it routes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub headers: &'a [(String, String)],
    pub auth: Option<&'a Auth>,
}
