//! Per-client protection: concurrent connections, and messages and recipients per time
//! window, by client address (exempt networks aside). Pure bookkeeping, no I/O.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postwire_core::config::SmtpConfig;
use postwire_core::net::Cidr;

#[derive(Debug, Default)]
struct Counters {
    connections: usize,
    window_start: Option<Instant>,
    messages: u32,
    recipients: u32,
}

#[derive(Debug)]
pub struct ClientLimits {
    max_connections: usize,
    max_messages: u32,
    max_recipients: u32,
    window: Duration,
    exempt: Vec<Cidr>,
    by_ip: Mutex<HashMap<IpAddr, Counters>>,
}

/// Held while a connection is open; releases its slot on drop.
pub struct ConnectionSlot {
    limits: Arc<ClientLimits>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut m = self.limits.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = m.get_mut(&self.ip) {
            c.connections = c.connections.saturating_sub(1);
            let expired = c
                .window_start
                .is_none_or(|s| s.elapsed() >= self.limits.window);
            if c.connections == 0 && expired {
                m.remove(&self.ip);
            }
        }
    }
}

impl ClientLimits {
    pub fn new(cfg: &SmtpConfig) -> ClientLimits {
        ClientLimits {
            max_connections: cfg.max_connections_per_ip,
            max_messages: cfg.max_messages_per_ip,
            max_recipients: cfg.max_recipients_per_ip,
            window: Duration::from_secs(cfg.rate_window_secs),
            exempt: cfg
                .limits_exempt
                .iter()
                .filter_map(|n| Cidr::parse(n))
                .collect(),
            by_ip: Mutex::default(),
        }
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|n| n.contains(ip))
    }

    /// A slot for a new connection, or `None` when this address has too many open.
    pub fn connect(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut m = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        let c = m.entry(ip).or_default();
        if !self.exempt(ip) && c.connections >= self.max_connections {
            return None;
        }
        c.connections += 1;
        Some(ConnectionSlot {
            limits: self.clone(),
            ip,
        })
    }

    /// Counts one more message (`recipients == 0`) or recipient; false when over the limit.
    fn count(&self, ip: IpAddr, message: bool) -> bool {
        if self.exempt(ip) {
            return true;
        }
        let (max, what) = if message {
            (self.max_messages, 0)
        } else {
            (self.max_recipients, 1)
        };
        if max == 0 {
            return true;
        }
        let mut m = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        let c = m.entry(ip).or_default();
        if c.window_start.is_none_or(|s| s.elapsed() >= self.window) {
            *c = Counters {
                connections: c.connections,
                window_start: Some(Instant::now()),
                messages: 0,
                recipients: 0,
            };
        }
        let n = if what == 0 {
            &mut c.messages
        } else {
            &mut c.recipients
        };
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    pub fn allow_message(&self, ip: IpAddr) -> bool {
        self.count(ip, true)
    }

    pub fn allow_recipient(&self, ip: IpAddr) -> bool {
        self.count(ip, false)
    }
}

impl crate::smtp::Admission for ClientLimits {
    fn allow_message(&self, ip: IpAddr) -> bool {
        ClientLimits::allow_message(self, ip)
    }

    fn allow_recipient(&self, ip: IpAddr) -> bool {
        ClientLimits::allow_recipient(self, ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(exempt: &[&str]) -> Arc<ClientLimits> {
        let cfg = SmtpConfig {
            max_connections_per_ip: 2,
            max_messages_per_ip: 2,
            max_recipients_per_ip: 3,
            limits_exempt: exempt.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        Arc::new(ClientLimits::new(&cfg))
    }

    #[test]
    fn connections_and_windows() {
        let l = limits(&[]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = l.connect(ip).unwrap();
        let _b = l.connect(ip).unwrap();
        assert!(l.connect(ip).is_none());
        assert!(
            l.connect("192.0.2.2".parse().unwrap()).is_some(),
            "other clients are not affected"
        );
        drop(a);
        assert!(l.connect(ip).is_some());
        assert!(l.allow_message(ip) && l.allow_message(ip) && !l.allow_message(ip));
        assert!(
            l.allow_recipient(ip)
                && l.allow_recipient(ip)
                && l.allow_recipient(ip)
                && !l.allow_recipient(ip)
        );
    }

    #[test]
    fn exempt_networks() {
        let l = limits(&["127.0.0.0/8"]);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let _s: Vec<_> = (0..5).map(|_| l.connect(ip).unwrap()).collect();
        assert!((0..5).all(|_| l.allow_message(ip)));
    }
}
