//! The endpoints' state (disabled after a 410, re-enabled by an admin), mirrored in memory
//! from the `postwire_endpoints` KV bucket by a watch. An attempt reads the mirror instead of
//! asking JetStream, which was one request per attempt on every delivery's success path
//! (issue 17: JetStream operations per mail).
//!
//! The mirror is complete before the first read: [`StateMirror::start`] reads the bucket's
//! current values through the watch (`LastPerSubject`) until the watch says nothing is
//! pending, then a task applies every later change. If the watch breaks (NATS restarted,
//! the connection lost), the task reads the whole bucket again and swaps it in; meanwhile
//! the last known state is used, as a read racing a change always could.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use postwire_core::bus;

use super::DeliverError;
use super::state::EndpointState;

/// Longest wait for the bucket's current values when (re)starting the mirror.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before the mirror is read again after its watch broke.
const RETRY: Duration = Duration::from_secs(1);

type States = HashMap<String, EndpointState>;

pub struct StateMirror {
    states: RwLock<States>,
}

impl StateMirror {
    /// Reads the bucket whole and starts following it. The task ends when the mirror is
    /// dropped (at its next change or retry).
    pub async fn start(js: &jetstream::Context) -> Result<Arc<StateMirror>, DeliverError> {
        let (states, watch) = load(js).await?;
        let mirror = Arc::new(StateMirror {
            states: RwLock::new(states),
        });
        tokio::spawn(follow(Arc::downgrade(&mirror), js.clone(), watch));
        Ok(mirror)
    }

    /// The endpoint's state; `None` when it is enabled.
    pub fn get(&self, tenant: &str, endpoint: &str) -> Option<EndpointState> {
        let states = self.states.read().unwrap_or_else(|e| e.into_inner());
        states.get(&super::state::key(tenant, endpoint)).cloned()
    }
}

/// The bucket's current values and the watch that continues after them.
async fn load(js: &jetstream::Context) -> Result<(States, kv::Watch), DeliverError> {
    let kv = js
        .get_key_value(bus::KV_ENDPOINTS)
        .await
        .map_err(DeliverError::bus)?;
    let mut stream = kv.stream.clone();
    let stored = stream
        .info()
        .await
        .map_err(DeliverError::bus)?
        .state
        .messages;
    let mut watch = kv
        .watch_with_history(">")
        .await
        .map_err(DeliverError::bus)?;
    let mut states = States::new();
    if stored == 0 {
        return Ok((states, watch));
    }
    let read = async {
        while let Some(entry) = watch.next().await {
            let entry = entry.map_err(DeliverError::bus)?;
            let last = entry.delta == 0;
            apply(&mut states, entry);
            if last {
                return Ok(());
            }
        }
        Err(DeliverError::Bus("the endpoint-state watch ended".into()))
    };
    match tokio::time::timeout(LOAD_TIMEOUT, read).await {
        Ok(Ok(())) => Ok((states, watch)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(DeliverError::Bus(
            "reading the endpoint states timed out".into(),
        )),
    }
}

fn apply(states: &mut States, entry: kv::Entry) {
    let state = match entry.operation {
        kv::Operation::Put => serde_json::from_slice::<EndpointState>(&entry.value)
            .ok()
            .filter(|s| s.disabled),
        kv::Operation::Delete | kv::Operation::Purge => None,
    };
    match state {
        Some(s) => states.insert(entry.key, s),
        None => states.remove(&entry.key),
    };
}

async fn follow(mirror: Weak<StateMirror>, js: jetstream::Context, mut watch: kv::Watch) {
    loop {
        while let Some(entry) = watch.next().await {
            let Some(m) = mirror.upgrade() else { return };
            match entry {
                Ok(entry) => apply(
                    &mut m.states.write().unwrap_or_else(|e| e.into_inner()),
                    entry,
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "The endpoint-state watch failed; reading the states again.");
                    break;
                }
            }
        }
        // The watch ended or failed: read the bucket again, until it works.
        loop {
            tokio::time::sleep(RETRY).await;
            if mirror.strong_count() == 0 {
                return;
            }
            match load(&js).await {
                Ok((states, w)) => {
                    let Some(m) = mirror.upgrade() else { return };
                    *m.states.write().unwrap_or_else(|e| e.into_inner()) = states;
                    watch = w;
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "Could not read the endpoint states."),
            }
        }
    }
}
