//! The provider under test.

use std::sync::Arc;
use std::time::Duration;

use faas_core::{FunctionDeployment, Provider};

/// How a subject builds a deployment of the conformance function.
pub type FunctionBuilder = Arc<dyn Fn(&str, &str) -> FunctionDeployment + Send + Sync>;

/// The provider under test, plus how to deploy its conformance function.
#[derive(Clone)]
pub struct Subject {
    /// The provider under test.
    pub provider: Arc<dyn Provider>,
    /// Builds a deployment of the conformance function (see
    /// [`crate::function`]) named `name` (first argument) in `namespace`
    /// (second argument). The kit adds env vars, secrets and labels on top.
    pub function: FunctionBuilder,
    /// How long to wait for eventual states (`availableReplicas`, an
    /// updated environment, logs) before failing. Default 30s.
    pub settle: Duration,
}

impl Subject {
    /// The default [`Subject::settle`].
    pub const DEFAULT_SETTLE: Duration = Duration::from_secs(30);

    /// A subject for `provider`, whose conformance function `function`
    /// builds, with the default settle time.
    pub fn new(
        provider: Arc<dyn Provider>,
        function: impl Fn(&str, &str) -> FunctionDeployment + Send + Sync + 'static,
    ) -> Self {
        Subject { provider, function: Arc::new(function), settle: Self::DEFAULT_SETTLE }
    }

    /// The same subject with another settle time.
    pub fn with_settle(self, settle: Duration) -> Self {
        Subject { settle, ..self }
    }

    /// How long a whole scenario may run before it fails as hung: eight
    /// settle times plus a minute, which covers every bounded wait a
    /// scenario makes and the 64 MiB transfer of `large_body`.
    pub fn scenario_deadline(&self) -> Duration {
        self.settle * 8 + Duration::from_secs(60)
    }
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject").field("settle", &self.settle).finish_non_exhaustive()
    }
}
