//! The spam stage: every mail is scored by rspamd (`POST /checkv2`, [`rspamd`]) after verify
//! and before parse, and the verdict goes in the payload (`spam`). A tenant may hold mail in
//! quarantine above a score (`spam.quarantine_above`, here) or refuse it at SMTP time above
//! another (`spam.reject_above`, checked by ingest through `postwire_node::inline`, with the
//! same client). rspamd unreachable, slow or answering an error is a temporary failure: the
//! mail waits and is tried again, never delivered unscored.

pub mod rspamd;
pub mod stage;

pub use rspamd::{Rspamd, SpamError};
