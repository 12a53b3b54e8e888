//! Write a postwire plugin in Rust as one function.
//!
//! ```ignore
//! use postwire_guest_sdk::{Event, Outcome, Error};
//!
//! fn transform(mut event: Event) -> Result<Outcome, Error> {
//!     event.message.subject = event.message.subject.map(|s| s.to_uppercase());
//!     Outcome::deliver(&event)
//! }
//!
//! postwire_guest_sdk::plugin!(transform);
//! ```
//!
//! The WIT package in `wit/` (`postwire:plugin@0.1.0`) is the source of truth; this crate
//! only re-exports what a plugin needs: the typed event ([`Event`], schema
//! `postwire.email.v1`), the [`Outcome`] and [`Error`] a plugin returns, the host's [`log`]
//! and [`config`], and the [`plugin!`] macro that exports the function. Build with
//! `cargo build --target wasm32-wasip2`; the result is a component postwire loads directly.

extern crate self as postwire_guest_sdk;

mod event;

pub use event::{Attachment, Envelope, Event, Mailbox, Message, Scan};
pub use serde_json::{self, Value, json};

/// The generated bindings of the `plugin` world. Plugins normally use [`plugin!`] instead.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "::postwire_guest_sdk::bindings",
        runtime_path: "::postwire_guest_sdk::__wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

use bindings::postwire::plugin::{host, types as wit};

/// What to do with the event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Deliver this JSON to the endpoints of the route the mail matched.
    Deliver(Value),
    /// Deliver nothing; the reason is kept in the audit record.
    Drop(String),
    /// Deliver to the endpoints of these routes instead: `(route, json)`.
    Route(Vec<(String, Value)>),
}

impl Outcome {
    /// Deliver anything serialisable: the (modified) [`Event`], or a JSON document of your own.
    pub fn deliver(value: &impl serde::Serialize) -> Result<Outcome, Error> {
        serde_json::to_value(value)
            .map(Outcome::Deliver)
            .map_err(|e| Error::Failed(format!("serialising the output: {e}")))
    }

    pub fn drop(reason: impl Into<String>) -> Result<Outcome, Error> {
        Ok(Outcome::Drop(reason.into()))
    }
}

/// Why the plugin could not decide; the tenant's `plugin_failure` mode applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    InvalidEvent(String),
    InvalidConfig(String),
    Failed(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidEvent(m) => write!(f, "invalid event: {m}"),
            Error::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            Error::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// Log lines, tagged by the host with the plugin, tenant and mail id.
pub mod log {
    use super::host::{self, Level};

    pub fn debug(message: &str) {
        host::log(Level::Debug, message);
    }
    pub fn info(message: &str) {
        host::log(Level::Info, message);
    }
    pub fn warn(message: &str) {
        host::log(Level::Warn, message);
    }
    pub fn error(message: &str) {
        host::log(Level::Error, message);
    }
}

/// This plugin's config from the tenant config (`plugins = [{ path, config = {…} }]`),
/// deserialised into `T`. Missing config is `{}`.
pub fn config<T: serde::de::DeserializeOwned>() -> Result<T, Error> {
    serde_json::from_str(&host::config()).map_err(|e| Error::InvalidConfig(e.to_string()))
}

/// Exports `handler: fn(Event) -> Result<Outcome, Error>` as the plugin's `transform`.
#[macro_export]
macro_rules! plugin {
    ($handler:path) => {
        struct __PostwirePlugin;

        impl $crate::bindings::Guest for __PostwirePlugin {
            fn transform(
                event: ::std::string::String,
            ) -> ::std::result::Result<
                $crate::bindings::postwire::plugin::types::Outcome,
                $crate::bindings::postwire::plugin::types::PluginError,
            > {
                $crate::__run(&event, $handler)
            }
        }

        $crate::bindings::export!(__PostwirePlugin with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub fn __run(
    event: &str,
    handler: impl FnOnce(Event) -> Result<Outcome, Error>,
) -> Result<wit::Outcome, wit::PluginError> {
    let event: Event =
        serde_json::from_str(event).map_err(|e| wit::PluginError::InvalidEvent(e.to_string()))?;
    match handler(event) {
        Ok(Outcome::Deliver(v)) => Ok(wit::Outcome::Deliver(v.to_string())),
        Ok(Outcome::Drop(reason)) => Ok(wit::Outcome::Drop(reason)),
        Ok(Outcome::Route(routes)) => Ok(wit::Outcome::Route(
            routes
                .into_iter()
                .map(|(route, v)| wit::Routed {
                    route,
                    event: v.to_string(),
                })
                .collect(),
        )),
        Err(Error::InvalidEvent(m)) => Err(wit::PluginError::InvalidEvent(m)),
        Err(Error::InvalidConfig(m)) => Err(wit::PluginError::InvalidConfig(m)),
        Err(Error::Failed(m)) => Err(wit::PluginError::Failed(m)),
    }
}
