//! Parse as a stage of the process worker: the raw mail → the payload's `message`, with the
//! attachment contents kept when a later stage (scan, store) needs them.

use crate::StageError;
use crate::process::mail::{Ctx, Flow, Mail, MailStage};

pub struct ParseStage {
    /// Keep the attachment contents for the scan and store stages.
    pub bodies: bool,
}

impl MailStage for ParseStage {
    async fn run(&self, _ctx: &Ctx<'_>, mail: &mut Mail) -> Result<Flow, StageError> {
        mail.parsed = Some(match self.bodies {
            true => super::parse_with_bodies(&mail.raw),
            false => {
                let (message, limits) = super::parse(&mail.raw);
                super::Parsed {
                    message,
                    limits,
                    bodies: Vec::new(),
                }
            }
        });
        Ok(Flow::Next)
    }
}
