//! End-to-end tests of postwire with real components: a nats-server per test, SMTP over
//! real sockets (raw lines and the lettre client), an HTTP receiver.

mod alerts;
mod claim_check;
mod config_docs;
mod contract;
mod corpus;
mod delivery;
mod durability;
mod end_to_end;
mod fuzz_seeds;
mod golden;
mod inline;
mod live_replica;
mod plugins;
mod replies;
mod retries;
mod smtp_conversation;
mod smtp_edge;
mod smtp_slow;
mod streamed_bodies;
mod synced;
mod threads;
