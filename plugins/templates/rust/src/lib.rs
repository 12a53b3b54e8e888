//! {{name}}: a postwire plugin. It sees each event (JSON, schema `postwire.email.v1`) and
//! says what to do with it: deliver (possibly modified), drop, or route elsewhere.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use postwire::plugin::host::{self, Level};
use serde_json::Value;

struct Plugin;

impl Guest for Plugin {
    fn transform(event: String) -> Result<Outcome, PluginError> {
        let mut ev: Value =
            serde_json::from_str(&event).map_err(|e| PluginError::InvalidEvent(e.to_string()))?;
        let config: Value = serde_json::from_str(&host::config())
            .map_err(|e| PluginError::InvalidConfig(e.to_string()))?;
        let subject = ev["message"]["subject"].as_str().unwrap_or_default().to_string();
        if subject.contains("[bulk]") {
            return Ok(Outcome::Drop("bulk mail".into()));
        }
        host::log(Level::Info, &format!("{{name}} saw {subject:?}"));
        ev["tagged_by"] = config.get("tag").cloned().unwrap_or(Value::from("{{name}}"));
        Ok(Outcome::Deliver(ev.to_string()))
    }
}

export!(Plugin);
