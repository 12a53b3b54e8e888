//! Integration tests of postwire-sign: every scheme round-trips through `Signer` and
//! `Verifier`, rotation works through a key directory, and each attack is refused.

mod attacks;
#[cfg(feature = "dns")]
mod dns;
#[cfg(feature = "dns")]
mod dns_server;
mod roundtrip;
mod smtpeter;
mod support;
