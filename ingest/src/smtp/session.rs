//! The SMTP session state machine. Input: bytes from the client. Output: [`Step`]s for the
//! I/O layer — replies to send, a transaction to make durable, or the end of the session.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::BytesMut;
use postwire_core::envelope::TlsInfo;
use postwire_core::routing::{Destination, Router};

use super::admission::Admission;
use super::command::{self, Command, MailParams};
use super::data::DataReader;
use super::received::Trace;
use super::reply::Reply;
pub use super::session_limits::SessionLimits;
use super::transaction::Transaction;

#[derive(Debug)]
pub enum Step {
    /// Send this reply (the I/O layer may batch replies until input runs dry).
    Reply(Reply),
    /// Make this transaction durable, then call [`Session::finish`] and send its reply.
    Deliver(Box<Transaction>),
    /// Send this reply and close the connection.
    Close(Reply),
    /// Send this reply, discard any input already buffered (it was sent in plaintext and
    /// must not be executed after the handshake), run the TLS handshake, then call
    /// [`Session::tls_started`].
    StartTls(Reply),
}

#[derive(Debug)]
enum State {
    Command,
    /// After an over-long line: drop input up to the next LF.
    SkipLine,
    Data(DataReader),
    Closed,
}

pub struct Session {
    limits: Arc<SessionLimits>,
    router: Arc<Router>,
    clients: Arc<dyn Admission>,
    client_ip: IpAddr,
    tls: Option<TlsInfo>,
    state: State,
    helo: Option<String>,
    mail: Option<(String, MailParams)>,
    rcpts: Vec<(String, Destination)>,
    errors: usize,
}

impl Session {
    pub fn new(
        limits: Arc<SessionLimits>,
        router: Arc<Router>,
        clients: Arc<dyn Admission>,
        client_ip: IpAddr,
    ) -> Session {
        Session {
            limits,
            router,
            clients,
            client_ip,
            tls: None,
            state: State::Command,
            helo: None,
            mail: None,
            rcpts: Vec::new(),
            errors: 0,
        }
    }

    /// After the handshake: the session starts over (RFC 3207 §4.2), now over TLS.
    pub fn tls_started(&mut self, info: TlsInfo) {
        self.tls = Some(info);
        self.helo = None;
        self.reset();
    }

    pub fn greeting(&self) -> Reply {
        Reply::plain(
            220,
            vec![format!("{} ESMTP postwire ready", self.limits.hostname)],
        )
    }

    /// True while reading message content (the I/O layer uses the DATA timeout then).
    pub fn in_data(&self) -> bool {
        matches!(self.state, State::Data(_))
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Message content held in memory during DATA (0 otherwise).
    pub fn data_buffered(&self) -> usize {
        match &self.state {
            State::Data(r) if !r.exceeded() => r.buffered(),
            _ => 0,
        }
    }

    /// True during a DATA that is already above the size limit (it will get 552).
    pub fn data_exceeded(&self) -> bool {
        matches!(&self.state, State::Data(r) if r.exceeded())
    }

    /// Takes the content held so far during DATA, for streaming it to storage.
    pub fn take_data(&mut self) -> Vec<u8> {
        match &mut self.state {
            State::Data(r) => r.take(),
            _ => Vec::new(),
        }
    }

    /// The `Received:` line for the transaction in progress.
    pub fn received_line(&self, mail_id: &str, date: &str) -> String {
        let trace = Trace {
            helo: self.helo.as_deref().unwrap_or_default(),
            client_ip: self.client_ip,
            smtputf8: self.mail.as_ref().is_some_and(|(_, p)| p.smtputf8),
            tls: self.tls.is_some(),
        };
        trace.received(&self.limits.hostname, mail_id, date)
    }

    /// Consumes input from `buf` and returns the next step, or `None` when more input is needed.
    pub fn advance(&mut self, buf: &mut BytesMut) -> Option<Step> {
        loop {
            match &mut self.state {
                State::Closed => return None,
                State::Data(reader) => {
                    if !reader.feed(buf) {
                        return None;
                    }
                    let State::Data(reader) = std::mem::replace(&mut self.state, State::Command)
                    else {
                        return None;
                    };
                    return Some(self.end_of_data(reader));
                }
                State::SkipLine => {
                    let Some(i) = buf.iter().position(|&b| b == b'\n') else {
                        buf.clear();
                        return None;
                    };
                    let _ = buf.split_to(i + 1);
                    self.state = State::Command;
                }
                State::Command => {
                    let max = self.limits.max_command_line_bytes;
                    let Some(i) = buf.iter().position(|&b| b == b'\n') else {
                        if buf.len() > max {
                            buf.clear();
                            self.state = State::SkipLine;
                            return Some(self.error(Reply::new(500, "5.5.2", "Line too long")));
                        }
                        return None;
                    };
                    let line = buf.split_to(i + 1);
                    if line.len() > max {
                        return Some(self.error(Reply::new(500, "5.5.2", "Line too long")));
                    }
                    let text = line.strip_suffix(b"\n").unwrap_or(&line);
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    return Some(self.command(text));
                }
            }
        }
    }

    /// Counts a protocol error; too many close the session.
    fn error(&mut self, reply: Reply) -> Step {
        self.errors += 1;
        if self.errors >= self.limits.max_errors {
            self.state = State::Closed;
            return Step::Close(Reply::new(
                421,
                "4.7.0",
                format!("{} Too many errors, closing", self.limits.hostname),
            ));
        }
        Step::Reply(reply)
    }

    fn reset(&mut self) {
        self.mail = None;
        self.rcpts.clear();
    }

    fn command(&mut self, line: &[u8]) -> Step {
        let cmd = match command::parse(line) {
            Ok(c) => c,
            Err(e) => return self.error(Reply::from(e)),
        };
        match cmd {
            Command::Ehlo(name) => {
                self.reset();
                self.helo = Some(name.clone());
                let mut lines = vec![
                    format!("{} greets {}", self.limits.hostname, name),
                    "PIPELINING".into(),
                    "8BITMIME".into(),
                    "SMTPUTF8".into(),
                    format!("SIZE {}", self.limits.max_message_bytes),
                    "ENHANCEDSTATUSCODES".into(),
                ];
                if self.limits.tls_available && self.tls.is_none() {
                    lines.push("STARTTLS".into());
                }
                lines.push("HELP".into());
                Step::Reply(Reply::plain(250, lines))
            }
            Command::Helo(name) => {
                self.reset();
                self.helo = Some(name);
                Step::Reply(Reply::plain(250, vec![self.limits.hostname.clone()]))
            }
            Command::Mail { from, params } => self.mail_from(from, params),
            Command::Rcpt { to } => self.rcpt_to(to),
            Command::Data => {
                if self.mail.is_none() {
                    return self.error(Reply::new(503, "5.5.1", "Send MAIL FROM first"));
                }
                if self.rcpts.is_empty() {
                    return self.error(Reply::new(554, "5.5.1", "No valid recipients"));
                }
                self.state = State::Data(DataReader::new(self.limits.max_message_bytes));
                Step::Reply(Reply::plain(
                    354,
                    vec!["End data with <CR><LF>.<CR><LF>".into()],
                ))
            }
            Command::Rset => {
                self.reset();
                Step::Reply(Reply::new(250, "2.0.0", "OK"))
            }
            Command::Noop => Step::Reply(Reply::new(250, "2.0.0", "OK")),
            Command::Quit => {
                self.state = State::Closed;
                Step::Close(Reply::new(
                    221,
                    "2.0.0",
                    format!("{} Bye", self.limits.hostname),
                ))
            }
            Command::Help => Step::Reply(Reply::new(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP. See https://github.com/postwire/postwire",
            )),
            Command::Vrfy => Step::Reply(Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message",
            )),
            Command::Expn => self.error(Reply::new(502, "5.5.1", "EXPN not supported")),
            Command::StartTls(args) => self.start_tls(args),
            Command::Auth => self.error(Reply::new(
                502,
                "5.5.1",
                "AUTH not available: this server only receives mail",
            )),
            Command::Bdat => self.error(Reply::new(502, "5.5.1", "BDAT not supported, use DATA")),
        }
    }

    fn start_tls(&mut self, args: bool) -> Step {
        if !self.limits.tls_available {
            return self.error(Reply::new(502, "5.5.1", "STARTTLS not available"));
        }
        if self.tls.is_some() {
            return self.error(Reply::new(503, "5.5.1", "TLS already active"));
        }
        if args {
            return self.error(Reply::new(
                501,
                "5.5.4",
                "Syntax error: STARTTLS takes no arguments",
            ));
        }
        Step::StartTls(Reply::new(220, "2.0.0", "Ready to start TLS"))
    }

    fn end_of_data(&mut self, reader: DataReader) -> Step {
        let (from, params) = self.mail.take().unwrap_or_default();
        let rcpts = std::mem::take(&mut self.rcpts);
        if reader.exceeded() {
            return Step::Reply(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
        }
        if reader.size() == 0 {
            return Step::Reply(Reply::new(554, "5.6.0", "Empty message rejected"));
        }
        Step::Deliver(Box::new(Transaction {
            helo: self.helo.clone().unwrap_or_default(),
            client_ip: self.client_ip,
            mail_from: from,
            params,
            rcpts,
            body: reader.into_body(),
            auth: None,
            spam: None,
            tls: self.tls.clone(),
            ses: None,
            spooled: None,
        }))
    }
}

#[path = "session_envelope.rs"]
mod envelope;

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
