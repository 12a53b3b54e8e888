//! The one configuration the end-to-end tests start from, as a builder: tenant `acme` (domain
//! acme.test; route `support` for support@acme.test and route `sales` for sales@acme.test,
//! both to endpoint `hook`), verification off, short retry delays. A test changes what it is
//! about and nothing else:
//!
//! ```
//! use postwire_e2e::config::TestConfig;
//! let cfg = TestConfig::new("nats://127.0.0.1:4222")
//!     .hook("http://127.0.0.1:8080/hook")
//!     .set("delivery", "alert_after_failures", "2")
//!     .endpoint("fast", "http://127.0.0.1:8081/fast")
//!     .route("sales", &["sales@acme.test"], &["fast"])
//!     .config();
//! assert_eq!(cfg.delivery.alert_after_failures, 2);
//! ```
//!
//! Values given to [`TestConfig::set`] are TOML (`"2"`, `"true"`, `"[]"`, [`quoted`]).

use postwire_core::Config;

/// A TOML string literal.
pub fn quoted(s: &str) -> String {
    format!("{s:?}")
}

const TENANT: &str = "tenants.acme";

#[derive(Debug, Clone)]
pub struct TestConfig {
    /// `[section]` → `key = value` lines, in order; a key set twice keeps its last value.
    sections: Vec<(String, Vec<(String, String)>)>,
    /// `[[tenants.acme.routes]]`: name, recipients, endpoints.
    routes: Vec<(String, Vec<String>, Vec<String>)>,
}

impl TestConfig {
    pub fn new(nats_url: &str) -> TestConfig {
        let cfg = TestConfig {
            sections: Vec::new(),
            routes: Vec::new(),
        };
        let cfg = match crate::nats::monitor_url_for(nats_url) {
            // Ingest reads the test server's sync setting there at start.
            Some(m) => cfg.set("nats", "monitor_url", &quoted(&m)),
            None => cfg,
        };
        cfg.set("nats", "url", &quoted(nats_url))
            .set("nats", "publish_timeout_ms", "1500")
            .set("smtp", "hostname", &quoted("mx.test"))
            .set("verify", "enabled", "false")
            .set("delivery", "retry_schedule", r#"["100ms", "200ms"]"#)
            .set("delivery", "retry_jitter", "0.1")
            .set("delivery", "request_timeout_secs", "5")
            .set("delivery", "ack_wait_secs", "3")
            .set("delivery", "ssrf_allow", r#"["127.0.0.1"]"#)
            .set(TENANT, "domains", r#"["acme.test"]"#)
            .route("support", &["support@acme.test"], &["hook"])
            .route("sales", &["sales@acme.test"], &["hook"])
            .endpoint("hook", "http://127.0.0.1:9/unused")
    }

    /// The URL of endpoint `hook`.
    pub fn hook(self, url: &str) -> TestConfig {
        self.endpoint("hook", url)
    }

    /// Endpoint `name` of tenant acme at `url` (plain HTTP allowed, the test secret); its
    /// other settings stay.
    pub fn endpoint(self, name: &str, url: &str) -> TestConfig {
        let section = format!("{TENANT}.endpoints.{name}");
        self.set(&section, "url", &quoted(url))
            .set(&section, "allow_http", "true")
            .set(&section, "secret", &quoted(crate::SECRET))
    }

    /// Sets one setting of endpoint `name` (`rate_per_sec`, `concurrency`, …).
    pub fn endpoint_set(self, name: &str, key: &str, value: &str) -> TestConfig {
        self.set(&format!("{TENANT}.endpoints.{name}"), key, value)
    }

    /// Route `name` of tenant acme (replacing one of that name).
    pub fn route(mut self, name: &str, recipients: &[&str], endpoints: &[&str]) -> TestConfig {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let route = (name.to_string(), own(recipients), own(endpoints));
        match self.routes.iter_mut().find(|r| r.0 == name) {
            Some(r) => *r = route,
            None => self.routes.push(route),
        }
        self
    }

    /// `key = value` in `[section]` (value in TOML syntax).
    pub fn set(mut self, section: &str, key: &str, value: &str) -> TestConfig {
        let idx = match self.sections.iter().position(|(s, _)| s == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let lines = &mut self.sections[idx].1;
        match lines.iter_mut().find(|(k, _)| k == key) {
            Some(line) => line.1 = value.to_string(),
            None => lines.push((key.to_string(), value.to_string())),
        }
        self
    }

    pub fn toml(&self) -> String {
        let list = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| quoted(s)).collect();
            format!("[{}]", items.join(", "))
        };
        let mut out = String::new();
        for (section, lines) in &self.sections {
            out.push_str(&format!("[{section}]\n"));
            for (k, v) in lines {
                out.push_str(&format!("{k} = {v}\n"));
            }
        }
        for (name, recipients, endpoints) in &self.routes {
            out.push_str(&format!(
                "[[{TENANT}.routes]]\nname = {}\nrecipients = {}\nendpoints = {}\n",
                quoted(name),
                list(recipients),
                list(endpoints)
            ));
        }
        out
    }

    /// The parsed configuration (panics with the TOML when it does not parse).
    pub fn config(&self) -> Config {
        let text = self.toml();
        Config::from_toml(&text)
            .unwrap_or_else(|e| panic!("the test config does not parse: {e}\n{text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_settings_replace_earlier_ones() {
        let cfg = TestConfig::new("nats://127.0.0.1:4222")
            .hook("http://127.0.0.1:1/hook")
            .set("delivery", "ssrf_allow", "[]")
            .endpoint("fast", "http://127.0.0.1:2/fast")
            .route("sales", &["sales@acme.test"], &["fast"])
            .config();
        assert!(cfg.delivery.ssrf_allow.is_empty());
        let acme = &cfg.tenants["acme"];
        assert_eq!(acme.endpoints["hook"].url, "http://127.0.0.1:1/hook");
        let sales = acme
            .routes
            .iter()
            .find(|r| r.name == "sales")
            .expect("sales");
        assert_eq!(sales.endpoints, ["fast"]);
        assert_eq!(acme.routes.len(), 2);
    }
}
