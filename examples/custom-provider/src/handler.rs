//! How functions run: async handlers registered by image name.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use faas_core::Body;
use futures_util::future::BoxFuture;
use http::{Request, Response};

use crate::logs::Logger;

/// What a handler knows about the function it serves, for one call.
#[derive(Clone)]
#[non_exhaustive]
pub struct FunctionContext {
    /// The function's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The replica serving this call (`<name>-<index>`).
    pub instance: String,
    /// The function's environment variables (`envVars`).
    pub env: BTreeMap<String, String>,
    /// The bytes of the secrets the function names, by secret name, as
    /// they are at the time of the call.
    pub secrets: BTreeMap<String, Vec<u8>>,
    pub(crate) logger: Logger,
}

impl FunctionContext {
    /// Writes `text` to the function's logs, one message per line.
    pub fn log(&self, text: &str) {
        self.logger.log(&self.instance, text);
    }
}

impl std::fmt::Debug for FunctionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secret values are never printed.
        f.debug_struct("FunctionContext")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("instance", &self.instance)
            .field("env", &self.env)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A registered handler, type-erased.
pub(crate) type Handler =
    Arc<dyn Fn(Request<Body>, FunctionContext) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// Erases a handler's type.
pub(crate) fn boxed<F, Fut>(handler: F) -> Handler
where
    F: Fn(Request<Body>, FunctionContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    Arc::new(move |request, context| Box::pin(handler(request, context)))
}
