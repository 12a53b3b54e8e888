//! `[admin]`: the admin API's listener, its tokens (global and per tenant) and whether the
//! tenant configuration is live (docs/api.md).

use serde::Deserialize;

/// The admin HTTP API, its dashboard (`/ui`) and its OpenAPI document. Off unless a token
/// is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: String,
    /// Environment variable holding the global bearer token; the API is off when it is unset.
    pub token_env: String,
    /// More tokens, each scoped to some tenants.
    pub tokens: Vec<AdminToken>,
    /// Tenant configuration lives in the JetStream KV bucket `postwire_tenants`, seeded from
    /// this file; every node applies changes without a restart. Off: the file only.
    pub live_config: bool,
}

/// A bearer token for some tenants (`[[admin.tokens]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Shown in the audit trail as who made a change.
    pub name: String,
    /// Environment variable holding the token (at least 16 characters).
    pub token_env: String,
    /// The tenants this token sees.
    pub tenants: Vec<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8026".into(),
            token_env: "POSTWIRE_ADMIN_TOKEN".into(),
            tokens: Vec::new(),
            live_config: true,
        }
    }
}

/// A token the admin API accepts, with what it may see.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub name: String,
    pub token: String,
    /// `None`: every tenant (the global token).
    pub tenants: Option<Vec<String>>,
}

impl AdminConfig {
    /// The global bearer token, when configured (at least 16 characters).
    pub fn token(&self) -> Option<String> {
        std::env::var(&self.token_env)
            .ok()
            .filter(|t| t.len() >= 16)
    }

    /// Every usable token: the global one and the scoped ones whose variable is set (a
    /// scoped token shorter than 16 characters is skipped with a warning).
    pub fn grants(&self) -> Vec<TokenGrant> {
        let mut out: Vec<TokenGrant> = self
            .token()
            .map(|token| TokenGrant {
                name: "admin".into(),
                token,
                tenants: None,
            })
            .into_iter()
            .collect();
        for t in &self.tokens {
            match std::env::var(&t.token_env) {
                Ok(token) if token.len() >= 16 => out.push(TokenGrant {
                    name: t.name.clone(),
                    token,
                    tenants: Some(t.tenants.clone()),
                }),
                Ok(_) => tracing::warn!(
                    token = %t.name,
                    "An admin token is shorter than 16 characters; it is not accepted."
                ),
                Err(_) => tracing::warn!(
                    token = %t.name, variable = %t.token_env,
                    "An admin token's variable is not set; it is not accepted."
                ),
            }
        }
        out
    }
}
