//! The HTTP listeners a node may run beside its workers: metrics, the admin API and
//! dashboard, the filesystem backend's blob server, and the `dev` sink.

use std::net::SocketAddr;
use std::sync::Arc;

use async_nats::jetstream;
use postwire_core::Config;
use postwire_core::live::LiveConfig;
use postwire_core::storage_config::Backend;
use postwire_stages::store::BlobStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{NodeError, Shutdown};

type Task = JoinHandle<Result<(), NodeError>>;

async fn bind(addr: &str, what: &str) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| NodeError::Unavailable(format!("cannot listen for {what} on {addr}: {e}")))
}

fn spawn_ok(f: impl std::future::Future<Output = ()> + Send + 'static) -> Task {
    tokio::spawn(async move {
        f.await;
        Ok(())
    })
}

/// Serves `/metrics` when `metrics.listen` is set.
pub async fn metrics(
    cfg: &Config,
    js: &jetstream::Context,
    stop: &Shutdown,
) -> Result<Option<Task>, NodeError> {
    let Some(addr) = &cfg.metrics.listen else {
        return Ok(None);
    };
    let listener = bind(addr, "metrics").await?;
    tracing::info!(listen = %addr, "Serving Prometheus metrics on /metrics.");
    Ok(Some(spawn_ok(crate::metrics_http::serve(
        listener,
        js.clone(),
        stop.clone().wait(),
    ))))
}

/// The admin listener (API, dashboard, JWKS); needs a token.
pub async fn admin(
    cfg: &Arc<Config>,
    js: &jetstream::Context,
    live: &Arc<LiveConfig>,
    stop: &Shutdown,
) -> Result<(SocketAddr, Task), NodeError> {
    if cfg.admin.token().is_none() {
        return Err(NodeError::Config(format!(
            "set {} to a bearer token of at least 16 characters",
            cfg.admin.token_env
        )));
    }
    let listener = bind(&cfg.admin.listen, "the admin API").await?;
    let addr = listener
        .local_addr()
        .map_err(|e| NodeError::Unavailable(e.to_string()))?;
    let api = postwire_admin::Api {
        js: js.clone(),
        grants: Arc::new(cfg.admin.grants()),
        base: cfg.clone(),
        live: live.clone(),
        writable: cfg.admin.live_config,
        keyrings: Arc::new(postwire_admin::keyrings(cfg)),
        plugin_host: Arc::default(),
    };
    tracing::info!(listen = %addr, "The admin API and dashboard are listening.");
    Ok((
        addr,
        spawn_ok(postwire_admin::serve(listener, api, stop.clone().wait())),
    ))
}

/// The local webhook sink of `postwire dev`: accepts the secrets of every endpoint.
pub fn sink(cfg: &Config, listener: TcpListener, stop: &Shutdown) -> Task {
    let keys = cfg
        .tenants
        .values()
        .flat_map(|t| t.endpoints.values())
        .filter_map(|e| e.secret_key().ok())
        .collect::<Vec<_>>();
    spawn_ok(crate::sink::serve(listener, keys, stop.clone().wait()))
}

/// Where the filesystem backend's URL signing key comes from.
pub struct BlobKey {
    /// Given by the embedder.
    pub given: Option<Vec<u8>>,
    /// Else from `storage.signing_key_env`, or made up when this is set and the variable
    /// is not.
    pub random: bool,
}

/// The object store as `[storage]` configures it (`None`: nothing stored). The filesystem
/// backend needs a URL signing key ([`BlobKey`]). With `serve`, the filesystem backend's blob server runs too.
pub async fn blobs(
    cfg: &Config,
    stop: &Shutdown,
    key: BlobKey,
    serve: bool,
    tasks: &mut Vec<(&'static str, Task)>,
) -> Result<Option<Arc<BlobStore>>, NodeError> {
    let s = &cfg.storage;
    let key = match key.given {
        Some(k) => Some(k),
        None => crate::blob_server::signing_key(&s.signing_key_env, key.random)
            .map_err(NodeError::Config)?,
    };
    if s.backend == Backend::Fs && key.is_none() {
        return Err(NodeError::Config(format!(
            "the fs storage backend needs a URL signing key in ${}",
            s.signing_key_env
        )));
    }
    let store = BlobStore::from_config(s, key.clone())
        .map_err(|e| NodeError::Config(format!("storage: {e}")))?
        .map(Arc::new);
    if let (true, Some(store), Backend::Fs, Some(key)) = (serve, &store, s.backend, key) {
        let listener = bind(&s.listen, "the blob server").await?;
        tracing::info!(listen = %s.listen, "Serving stored objects on /blobs (signed URLs).");
        tasks.push((
            "blobs",
            spawn_ok(crate::blob_server::serve(
                listener,
                store.clone(),
                key,
                stop.clone().wait(),
            )),
        ));
    }
    Ok(store)
}
