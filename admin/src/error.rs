//! What fails inside the API besides the request (storage, the plugin host, the audit
//! trail). Handlers turn these into problem details: [`AdminError::is_retryable`] ones are
//! 503 (try again), the others say what is wrong with the request.

use std::sync::Arc;

use postwire_stages::transform::TransformError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The plugin object store could not be opened or created.
    #[error("the plugin store: {0}")]
    PluginStore(#[source] BoxError),
    /// A file of the plugin host's cache could not be written.
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An uploaded plugin does not load.
    #[error("the plugin does not load: {0}")]
    PluginLoad(#[source] TransformError),
    /// The API's plugin host does not start (kept: it is not retried per request).
    #[error("{0}")]
    PluginHost(#[source] Arc<TransformError>),
    #[error("encoding an audit record: {0}")]
    Encode(#[source] serde_json::Error),
    /// Object storage (raw mail) could not be opened or read.
    #[error("object storage: {0}")]
    Storage(#[source] BoxError),
    /// The audit record was not acknowledged by JetStream.
    #[error("publishing an audit record: {0}")]
    Publish(#[source] BoxError),
}

impl AdminError {
    /// Whether trying again later may succeed (NATS, the disk); a plugin that does not load
    /// or a record that does not encode will not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AdminError::PluginStore(_)
                | AdminError::File { .. }
                | AdminError::Storage(_)
                | AdminError::Publish(_)
        )
    }

    pub(crate) fn file(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AdminError {
        let path = path.display().to_string();
        move |source| AdminError::File { path, source }
    }
}
