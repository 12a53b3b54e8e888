//! How starting or running a node fails.

/// Why a node could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration (or an argument) is wrong: nothing was started. Exit code 2.
    #[error("{0}")]
    Config(String),
    /// Something the node needs is not there (NATS, a port, a key store). Exit code 1.
    #[error("{0}")]
    Unavailable(String),
    /// A worker stopped with an error or crashed.
    #[error("{0}")]
    Stopped(String),
}

impl NodeError {
    /// Whether the operator must change the configuration or the command line.
    pub fn is_config(&self) -> bool {
        matches!(self, NodeError::Config(_))
    }

    pub(crate) fn config(e: impl std::fmt::Display) -> NodeError {
        NodeError::Config(e.to_string())
    }
}
