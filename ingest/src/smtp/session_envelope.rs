//! MAIL FROM and RCPT TO: the envelope of the transaction in progress, checked against the
//! limits, the per-client admission and the routing (unknown recipients are refused here,
//! never bounced later).

use postwire_core::routing::Refusal;

use super::{MailParams, Reply, Session, Step};

impl Session {
    pub(super) fn mail_from(&mut self, from: String, params: MailParams) -> Step {
        if self.helo.is_none() {
            return self.error(Reply::new(503, "5.5.1", "Send EHLO or HELO first"));
        }
        if self.mail.is_some() {
            return self.error(Reply::new(503, "5.5.1", "Nested MAIL command"));
        }
        if !from.is_ascii() && !params.smtputf8 {
            return self.error(Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address requires SMTPUTF8",
            ));
        }
        if params
            .size
            .is_some_and(|s| s > self.limits.max_message_bytes)
        {
            return Step::Reply(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
        }
        if !self.clients.allow_message(self.client_ip) {
            return Step::Reply(Reply::new(
                451,
                "4.7.1",
                "Too many messages from your address, try again later",
            ));
        }
        self.mail = Some((from, params));
        Step::Reply(Reply::new(250, "2.1.0", "Sender OK"))
    }

    pub(super) fn rcpt_to(&mut self, to: String) -> Step {
        let Some((_, params)) = &self.mail else {
            return self.error(Reply::new(503, "5.5.1", "Send MAIL FROM first"));
        };
        if !to.is_ascii() && !params.smtputf8 {
            return self.error(Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address requires SMTPUTF8",
            ));
        }
        if self.rcpts.len() >= self.limits.max_recipients {
            return Step::Reply(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        match self.router.resolve(&to) {
            Ok(dest) if self.tls.is_none() && self.limits.require_tls.contains(&dest.tenant) => {
                self.error(Reply::new(
                    530,
                    "5.7.0",
                    "Must issue a STARTTLS command first",
                ))
            }
            Ok(_) if !self.clients.allow_recipient(self.client_ip) => Step::Reply(Reply::new(
                451,
                "4.7.1",
                "Too many recipients from your address, try again later",
            )),
            Ok(dest) => {
                if !self.rcpts.iter().any(|(a, _)| a.eq_ignore_ascii_case(&to)) {
                    self.rcpts.push((to, dest));
                }
                Step::Reply(Reply::new(250, "2.1.5", "Recipient OK"))
            }
            Err(Refusal::NotOurDomain) => self.error(Reply::new(
                550,
                "5.7.1",
                "Relaying denied: not a domain handled here",
            )),
            Err(Refusal::NoSuchUser) => {
                self.error(Reply::new(550, "5.1.1", "No such recipient here"))
            }
            Err(Refusal::BadAddress) => {
                self.error(Reply::new(501, "5.1.3", "Bad recipient address"))
            }
        }
    }
}
