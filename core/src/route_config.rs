//! A tenant's routes (`[[tenants.<name>.routes]]`) and their validation, including the check
//! that no route is shadowed by an earlier `stop` route. Matching lives in [`crate::routing`].

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::routing::{HeaderCondition, HeaderRule, Pattern, VerdictCondition, shadowed};
use crate::tenant_config::{TenantConfig, is_valid_name};

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// `user@domain` (also matches `user+tag@domain`), `sales-*@domain` (glob: `*`, `?`),
    /// `*@domain`, `*` (any of the tenant's domains), or `/regex/` over the whole address.
    pub recipients: Vec<String>,
    /// Every condition must hold: some header of that name matches the regex.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderCondition>,
    /// Accepted authentication verdicts, e.g. `{ dmarc = ["pass"] }`.
    #[serde(default, skip_serializing_if = "VerdictCondition::is_empty")]
    pub verdicts: VerdictCondition,
    /// Routes are tried by priority, lower first; equal priorities in the order listed.
    #[serde(default)]
    pub priority: i32,
    /// When this route matches, later routes are not tried (default). `false`: the mail
    /// also goes to the next matching routes (fan-out).
    #[serde(default = "yes")]
    pub stop: bool,
    pub endpoints: Vec<String>,
}

impl RouteConfig {
    /// A route on recipients alone, with the defaults (priority 0, stop).
    pub fn new(name: &str, recipients: Vec<String>, endpoints: Vec<String>) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            recipients,
            headers: Vec::new(),
            verdicts: VerdictCondition::default(),
            priority: 0,
            stop: true,
            endpoints,
        }
    }
}

/// Checks the routes of tenant `t` (config path `tp`).
pub(crate) fn validate(tp: &str, t: &TenantConfig) -> Result<(), ConfigError> {
    let mut route_names = std::collections::BTreeSet::new();
    for (ri, r) in t.routes.iter().enumerate() {
        let rp = format!("{tp}.routes[{ri}]");
        if !is_valid_name(&r.name) {
            return Err(ConfigError::new(
                format!("{rp}.name"),
                "route names use a-z, 0-9, - and _",
            ));
        }
        if !route_names.insert(&r.name) {
            return Err(ConfigError::new(
                format!("{rp}.name"),
                format!("duplicate route {}", r.name),
            ));
        }
        if r.recipients.is_empty() {
            return Err(ConfigError::new(
                format!("{rp}.recipients"),
                "needs at least one pattern",
            ));
        }
        for (pi, p) in r.recipients.iter().enumerate() {
            let pat = Pattern::parse(p)
                .map_err(|m| ConfigError::new(format!("{rp}.recipients[{pi}]"), m.to_string()))?;
            if !pat.within(&t.domains) {
                return Err(ConfigError::new(
                    format!("{rp}.recipients[{pi}]"),
                    format!("{p} is not in the tenant's domains"),
                ));
            }
        }
        for (hi, h) in r.headers.iter().enumerate() {
            let hp = format!("{rp}.headers[{hi}]");
            let name_ok = !h.name.trim().is_empty()
                && h.name
                    .trim()
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b':');
            if !name_ok {
                return Err(ConfigError::new(
                    format!("{hp}.name"),
                    "a header name: printable ASCII without ':'",
                ));
            }
            HeaderRule::compile(h).map_err(|e| {
                ConfigError::new(
                    format!("{hp}.regex"),
                    format!("not a regular expression: {e}"),
                )
            })?;
        }
        if let Some((check, v)) = r.verdicts.unknown() {
            return Err(ConfigError::new(
                format!("{rp}.verdicts.{check}"),
                format!(
                    "{v:?} is not a verdict (one of {})",
                    crate::routing::conditions::VERDICT_NAMES.join(", ")
                ),
            ));
        }
        if r.endpoints.is_empty() {
            return Err(ConfigError::new(
                format!("{rp}.endpoints"),
                "needs at least one endpoint",
            ));
        }
        for (ei, e) in r.endpoints.iter().enumerate() {
            if !t.endpoints.contains_key(e) {
                return Err(ConfigError::new(
                    format!("{rp}.endpoints[{ei}]"),
                    format!("unknown endpoint {e:?}"),
                ));
            }
        }
    }
    if let Some(s) = shadowed(&t.domains, &t.routes).into_iter().next() {
        let by = s.by.join(", ");
        let plural = if s.by.len() > 1 { "s" } else { "" };
        return Err(ConfigError::new(
            format!("{tp}.routes[{}]", s.index),
            format!(
                "route {} can never match: route{plural} {by} (tried first, with stop and no \
                 conditions) take{} every recipient it names. Give {} a lower priority than \
                 {by} (or put it before), or set stop = false on {by}",
                s.route,
                if s.by.len() > 1 { "" } else { "s" },
                s.route
            ),
        ));
    }
    Ok(())
}
