//! Shared vocabulary of postwire: the event model (`postwire.email.v1`), the configuration
//! file, the NATS subjects, streams and header names, and small bus helpers.
//!
//! Nothing here speaks SMTP or HTTP: protocol logic lives in `postwire-ingest` and
//! `postwire-stages`.

pub mod admin_config;
pub mod antivirus_config;
pub mod bus;
pub mod config;
pub mod config_error;
pub mod delivery_config;
pub mod doctor;
pub mod durability;
pub mod envelope;
pub mod event;
pub mod ids;
pub mod live;
pub mod metrics;
pub mod nats_config;
pub mod net;
pub mod plugin_config;
pub mod redact;
pub mod route_config;
pub mod routing;
pub mod since;
pub mod spam_config;
pub mod storage_config;
pub mod telemetry;
pub mod tenant_config;
pub mod verify_config;

pub use config::Config;
pub use envelope::Envelope;
