//! The wiring of a postwire process: which roles it runs (SMTP ingest, the process worker,
//! the deliver worker, the admin API), on which configuration (live, from the config bucket),
//! with which storage, listeners and shutdown. The binary and the end-to-end tests start
//! the pipeline through [`start`] alike.
//!
//! - [`start`] / [`Options`] / [`Roles`] / [`Running`]: one node.
//! - [`connect`]: the configuration file, JetStream, the live configuration.
//! - [`ingest`]: the SMTP ingest role, with its claim check ([`claim`]) and SMTP-time
//!   verification ([`inline`]), and the SES endpoint.
//! - [`listeners`]: metrics, admin API, blob server and sink listeners.
//! - [`shutdown`]: Ctrl-C / SIGTERM (or a test's trigger) fanned out to every part.

pub mod alloc;
pub mod blob_server;
pub mod claim;
pub mod connect;
mod error;
pub mod ingest;
pub mod inline;
pub mod listeners;
pub mod metrics_http;
pub mod ses_http;
pub mod shutdown;
pub mod sink;
mod start;

pub use error::NodeError;
pub use shutdown::{Shutdown, Trigger};
pub use start::{Options, Roles, Running, check_split_storage, start};
