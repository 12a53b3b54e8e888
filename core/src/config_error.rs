//! The error of loading and validating the configuration.

/// A configuration problem, with the dotted path of the offending key.
#[derive(Debug, thiserror::Error)]
#[error("config: {path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}
