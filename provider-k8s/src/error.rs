//! The provider's own errors, and how they map to [`faas_core::Error`].

use std::time::Duration;

use faas_core::BoxError;

/// The provider's name, in errors and in `/system/info` alike.
pub(crate) const PROVIDER: &str = "k8s";

/// What went wrong talking to the API server or a function.
#[derive(Debug, thiserror::Error)]
pub(crate) enum K8sError {
    /// The API server did not answer: connection refused or cut, DNS, TLS.
    #[error("cannot reach the Kubernetes API server ({action})")]
    Unreachable {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// The API server did not answer in time.
    #[error("the Kubernetes API server did not answer within {after:?} ({action})")]
    ApiTimeout { action: String, after: Duration },
    /// The API server answered with a `Status` failure.
    #[error("the Kubernetes API server refused to {action} ({code} {reason}): {message}")]
    Api {
        action: String,
        /// What was acted on, for `NotFound` and `AlreadyExists`.
        kind: &'static str,
        /// Its name (`name.namespace` for namespaced objects).
        name: String,
        code: u16,
        reason: String,
        message: String,
    },
    /// 409 Conflict on every attempt: other clients kept writing the object.
    #[error("could not {action}: the object was modified by another client on each of {attempts} attempts: {message}")]
    Conflict { action: String, attempts: u32, message: String },
    /// An object of the function's name exists and is not ours.
    #[error("{what} exists and is not managed by faas-rs; it is left untouched")]
    NotOurs { what: String },
    /// The API server answered something unreadable, or the client failed.
    #[error("unexpected failure while trying to {action}")]
    Client {
        action: String,
        #[source]
        source: kube::Error,
    },
}

impl K8sError {
    /// Classifies a client error raised while trying to `action` on the
    /// object `kind` named `name`.
    pub(crate) fn kube(
        action: impl Into<String>,
        kind: &'static str,
        name: impl Into<String>,
        err: kube::Error,
    ) -> Self {
        let action = action.into();
        match err {
            kube::Error::Api(status) => K8sError::Api {
                action,
                kind,
                name: name.into(),
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => K8sError::Unreachable { action, source: err },
            other => K8sError::Client { action, source: other },
        }
    }

    /// The HTTP status the API server answered, if it answered one.
    pub(crate) fn code(&self) -> Option<u16> {
        match self {
            K8sError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether this is a 409 Conflict (a stale `resourceVersion`), worth a
    /// retry on a fresh read.
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self, K8sError::Api { code: 409, reason, .. } if reason != "AlreadyExists")
    }

    /// Whether this is a 409 AlreadyExists.
    pub(crate) fn is_already_exists(&self) -> bool {
        matches!(self, K8sError::Api { code: 409, reason, .. } if reason == "AlreadyExists")
    }

    /// Whether this is a 404 NotFound.
    pub(crate) fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }
}

/// Runs one API request, bounded by `limit`, classifying its error.
pub(crate) async fn api<T>(
    limit: Duration,
    action: &str,
    kind: &'static str,
    name: &str,
    request: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, K8sError> {
    match tokio::time::timeout(limit, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(K8sError::kube(action, kind, name, err)),
        Err(_) => Err(K8sError::ApiTimeout { action: action.to_owned(), after: limit }),
    }
}

impl From<K8sError> for faas_core::Error {
    fn from(err: K8sError) -> Self {
        match err {
            K8sError::Api { code: 404, kind, name, .. } => faas_core::Error::NotFound { kind, name },
            K8sError::Api { code: 409, ref reason, kind, ref name, .. } if reason == "AlreadyExists" => {
                faas_core::Error::AlreadyExists { kind, name: name.clone() }
            }
            K8sError::Api { code: 403, ref message, .. } => faas_core::Error::forbidden(PROVIDER, message.clone()),
            K8sError::Api { code: 422, ref message, .. } | K8sError::Api { code: 400, ref message, .. } => {
                faas_core::Error::invalid("deployment", format!("the Kubernetes API server refused it: {message}"))
            }
            K8sError::Api { code: 503, .. } => {
                faas_core::Error::unavailable(PROVIDER, err.to_string(), Some(Box::new(err) as BoxError))
            }
            err @ K8sError::NotOurs { .. } => faas_core::Error::AlreadyExists {
                kind: "Kubernetes object",
                name: match &err {
                    K8sError::NotOurs { what } => format!("{what} (not managed by faas-rs)"),
                    _ => String::new(),
                },
            },
            err @ (K8sError::Unreachable { .. } | K8sError::ApiTimeout { .. }) => faas_core::Error::unavailable(
                PROVIDER,
                "the Kubernetes API server is not reachable",
                Some(Box::new(err) as BoxError),
            ),
            err => faas_core::Error::backend(PROVIDER, err.to_string(), Some(Box::new(err) as BoxError)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, reason: &str, message: &str) -> kube::Error {
        let mut status = kube::core::Status::failure(message, reason);
        status.code = code;
        kube::Error::Api(Box::new(status))
    }

    fn core(code: u16, reason: &str, message: &str) -> faas_core::Error {
        K8sError::kube("create deployment", "function", "f.openfaas-fn", status(code, reason, message)).into()
    }

    #[test]
    fn errors_name_the_provider_as_system_info_does() {
        // `/system/info` says "k8s" (provider.rs, `ProviderInfo::new(PROVIDER, ..)`, checked through the
        // gateway in k8s_gateway.rs); errors name the same provider, not "kubernetes".
        let unavailable = core(503, "ServiceUnavailable", "etcd is down");
        assert!(unavailable.to_string().starts_with("k8s backend unavailable"), "{unavailable}");
        let forbidden = core(403, "Forbidden", "no");
        assert!(forbidden.to_string().starts_with("k8s "), "{forbidden}");
    }

    #[test]
    fn api_errors_map_to_the_right_status() {
        let not_found = core(404, "NotFound", "deployments.apps \"f\" not found");
        assert_eq!(not_found.status(), 404);
        assert!(matches!(not_found, faas_core::Error::NotFound { kind: "function", .. }));
        assert_eq!(core(409, "AlreadyExists", "exists").status(), 409);
        let forbidden = core(403, "Forbidden", "deployments.apps is forbidden: User \"x\" cannot create");
        assert_eq!(forbidden.status(), 403);
        assert!(forbidden.message().contains("cannot create"), "{}", forbidden.message());
        let quota = core(403, "Forbidden", "exceeded quota: q, requested: count/deployments.apps=1");
        assert!(quota.message().contains("exceeded quota"), "{}", quota.message());
        assert_eq!(core(422, "Invalid", "spec.template: invalid").status(), 400);
        assert_eq!(core(500, "InternalError", "etcd").status(), 502);
        assert_eq!(core(409, "Conflict", "modified").status(), 502);
        assert!(K8sError::kube("x", "function", "f", status(409, "Conflict", "m")).is_conflict());
        assert!(!K8sError::kube("x", "function", "f", status(409, "AlreadyExists", "m")).is_conflict());
    }

    #[test]
    fn unreachable_and_foreign_objects() {
        let timeout: faas_core::Error =
            K8sError::ApiTimeout { action: "list deployments".into(), after: Duration::from_secs(1) }.into();
        assert_eq!(timeout.status(), 503);
        assert!(timeout.message().contains("did not answer"), "{}", timeout.message());
        let foreign: faas_core::Error = K8sError::NotOurs { what: "Deployment openfaas-fn/web".into() }.into();
        assert_eq!(foreign.status(), 409);
        assert!(foreign.message().contains("not managed by faas-rs"), "{}", foreign.message());
    }
}
