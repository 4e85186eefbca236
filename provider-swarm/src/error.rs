//! The provider's own errors, and how they map to [`faas_core::Error`].

use bollard::errors::Error as DockerError;
use faas_core::BoxError;

/// The provider's name in errors.
pub(crate) const PROVIDER: &str = "swarm";

/// What went wrong talking to the Docker engine or a function.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SwarmError {
    /// The engine did not answer: socket missing, connection refused,
    /// timeout.
    #[error("cannot reach the Docker engine ({action}); is dockerd running and DOCKER_HOST right?")]
    Unreachable {
        action: String,
        #[source]
        source: DockerError,
    },
    /// The engine is not a manager of an active swarm.
    #[error(
        "the Docker engine is not a swarm manager (swarm state: {state}); run `docker swarm init` \
         or point DOCKER_HOST at a manager node"
    )]
    NotManager { state: String },
    /// The engine answered with an error status.
    #[error("the Docker engine refused to {action} (HTTP {status}): {message}")]
    Refused { action: String, status: u16, message: String },
    /// The engine answered something unreadable.
    #[error("unexpected answer from the Docker engine while trying to {action}")]
    Protocol {
        action: String,
        #[source]
        source: DockerError,
    },
    /// The configured network exists but cannot carry functions.
    #[error("network {name:?} cannot be used for functions: {reason}")]
    Network { name: String, reason: String },
}

impl SwarmError {
    /// Classifies an engine error raised while trying to `action`.
    pub(crate) fn docker(action: impl Into<String>, source: DockerError) -> Self {
        let action = action.into();
        match source {
            DockerError::DockerResponseServerError { status_code, message } => {
                if status_code == 503 && message.contains("swarm") {
                    return SwarmError::NotManager { state: message };
                }
                SwarmError::Refused { action, status: status_code, message }
            }
            DockerError::JsonDataError { .. } | DockerError::JsonSerdeError { .. } => {
                SwarmError::Protocol { action, source }
            }
            other => SwarmError::Unreachable { action, source: other },
        }
    }
}

/// The HTTP status of an engine error, if the engine answered one.
pub(crate) fn status_of(err: &DockerError) -> Option<u16> {
    match err {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

impl From<SwarmError> for faas_core::Error {
    fn from(err: SwarmError) -> Self {
        match err {
            SwarmError::Refused { status: 400, ref message, .. } => {
                faas_core::Error::invalid("deployment", format!("{}: {message}", err_action(&err)))
            }
            SwarmError::Refused { status: 409, .. } => faas_core::Error::backend(PROVIDER, err.to_string(), None),
            err @ (SwarmError::Unreachable { .. } | SwarmError::NotManager { .. }) => faas_core::Error::unavailable(
                PROVIDER,
                "the Docker engine is not usable",
                Some(Box::new(err) as BoxError),
            ),
            err @ SwarmError::Network { .. } => faas_core::Error::unavailable(PROVIDER, err.to_string(), None),
            err => faas_core::Error::backend(PROVIDER, err.to_string(), Some(Box::new(err) as BoxError)),
        }
    }
}

fn err_action(err: &SwarmError) -> &str {
    match err {
        SwarmError::Refused { action, .. } => action,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status_code: u16, message: &str) -> DockerError {
        DockerError::DockerResponseServerError { status_code, message: message.to_owned() }
    }

    #[test]
    fn engine_errors_map_to_the_right_status() {
        let not_manager = SwarmError::docker(
            "list services",
            server(503, "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\""),
        );
        let core: faas_core::Error = not_manager.into();
        assert_eq!(core.status(), 503);
        assert!(core.message().contains("docker swarm init"), "{}", core.message());

        let bad: faas_core::Error = SwarmError::docker("create service", server(400, "bad mount")).into();
        assert_eq!(bad.status(), 400);
        assert!(bad.message().contains("bad mount"), "{}", bad.message());

        let gone: faas_core::Error =
            SwarmError::docker("ping", DockerError::SocketNotFoundError("/var/run/docker.sock".into())).into();
        assert_eq!(gone.status(), 503);
        assert!(gone.message().contains("cannot reach the Docker engine"), "{}", gone.message());

        let other: faas_core::Error = SwarmError::docker("update service", server(500, "rpc error")).into();
        assert_eq!(other.status(), 502);
    }
}
