//! `postwire plugin …`: tools for plugin authors. Each subcommand parses its arguments and
//! calls the plugin host (`postwire_stages::transform`).
//!
//! - [`test`]: one plugin over one event (or raw message), as a worker would run it.
//! - [`new`]: writes a plugin project that builds and passes `plugin test` as it is.
//! - [`trial`]: `plugin try`, a candidate version over a tenant's stored mails (admin API).
//! - [`events`]: drops and fail-open errors from the audit stream, through the admin API.

pub mod events;
pub mod new;
pub mod test;
pub mod trial;

pub use events::{EventsArgs, events};
pub use new::{NewArgs, new};
pub use test::{TestArgs, test};
pub use trial::{TryArgs, try_plugin};
