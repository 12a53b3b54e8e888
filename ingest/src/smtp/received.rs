//! The `Received:` trace line (RFC 5321 §4.4) ingest prepends to every message.

use std::net::IpAddr;

use super::transaction::Transaction;

/// What the `Received:` line says about the client.
pub struct Trace<'a> {
    pub helo: &'a str,
    pub client_ip: IpAddr,
    pub smtputf8: bool,
    pub tls: bool,
}

impl<'a> Trace<'a> {
    /// The trace of a complete transaction.
    pub fn of(tx: &'a Transaction) -> Trace<'a> {
        Trace {
            helo: &tx.helo,
            client_ip: tx.client_ip,
            smtputf8: tx.params.smtputf8,
            tls: tx.tls.is_some(),
        }
    }

    /// The `Received:` line, `date` in RFC 2822 form.
    pub fn received(&self, hostname: &str, mail_id: &str, date: &str) -> String {
        // RFC 3848 / RFC 6531 "with" protocol types.
        let with = match (self.smtputf8, self.tls) {
            (true, true) => "UTF8SMTPS",
            (true, false) => "UTF8SMTP",
            (false, true) => "ESMTPS",
            (false, false) => "ESMTP",
        };
        let helo: String = self
            .helo
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect();
        format!(
            "Received: from {helo} ([{}])\r\n\tby {hostname} (postwire) with {with} id {mail_id};\r\n\t{date}\r\n",
            self.client_ip
        )
    }
}
