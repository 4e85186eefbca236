//! Step 3: this provider's own errors, and their one mapping onto
//! [`faas_core::Error`].
//!
//! Keep your error enum private and describe your own layer in its
//! messages; the `From` impl below is the only place that decides which
//! platform error (and so which HTTP status) each failure becomes.

use faas_core::Error;

/// The provider's name, as `info()` and errors report it.
pub(crate) const PROVIDER: &str = "in-memory";

/// What can go wrong inside the in-memory provider.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MemoryError {
    #[error("in-memory provider: no function {name:?} in namespace {namespace:?}")]
    FunctionNotFound { name: String, namespace: String },
    #[error("in-memory provider: function {name:?} already exists in namespace {namespace:?}")]
    FunctionExists { name: String, namespace: String },
    #[error("in-memory provider: no secret {name:?} in namespace {namespace:?}")]
    SecretNotFound { name: String, namespace: String },
    #[error("in-memory provider: secret {name:?} already exists in namespace {namespace:?}")]
    SecretExists { name: String, namespace: String },
    #[error("in-memory provider: no namespace {name:?}")]
    NamespaceNotFound { name: String },
    #[error("in-memory provider: namespace {name:?} already exists")]
    NamespaceExists { name: String },
    #[error("in-memory provider: no handler is registered for image {image:?}")]
    UnknownImage { image: String },
    #[error("in-memory provider: the default namespace {name:?} cannot be deleted")]
    DefaultNamespace { name: String },
    #[error("in-memory provider: function {name:?} in namespace {namespace:?} is scaled to zero")]
    NoReplicas { name: String, namespace: String },
}

impl From<MemoryError> for Error {
    fn from(err: MemoryError) -> Self {
        match err {
            MemoryError::FunctionNotFound { name, namespace } => Error::function_not_found(&name, &namespace),
            MemoryError::FunctionExists { name, namespace } => {
                Error::AlreadyExists { kind: "function", name: format!("{name}.{namespace}") }
            }
            MemoryError::SecretNotFound { name, namespace } => {
                Error::NotFound { kind: "secret", name: format!("{name}.{namespace}") }
            }
            MemoryError::SecretExists { name, namespace } => {
                Error::AlreadyExists { kind: "secret", name: format!("{name}.{namespace}") }
            }
            MemoryError::NamespaceNotFound { name } => Error::NotFound { kind: "namespace", name },
            MemoryError::NamespaceExists { name } => Error::AlreadyExists { kind: "namespace", name },
            err @ MemoryError::UnknownImage { .. } => Error::invalid("image", err.to_string()),
            err @ MemoryError::DefaultNamespace { .. } => Error::invalid("name", err.to_string()),
            err @ MemoryError::NoReplicas { .. } => Error::unavailable(PROVIDER, err.to_string(), None),
        }
    }
}
