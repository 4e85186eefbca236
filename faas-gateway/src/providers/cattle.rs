//! The `cattle` provider: functions as Rancher 1.x (Cattle) services.
//!
//! Configured by the environment rather than flags, so that the gateway's
//! command line stays the same for every provider:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `CATTLE_URL` | the Rancher API: `http://host:8080`, `.../v1`, `.../v2-beta` or an environment's `.../v2-beta/projects/<id>` (`/v1` is normalised to `/v2-beta`) | required |
//! | `CATTLE_ACCESS_KEY` | the API access key (an environment API key) | required |
//! | `CATTLE_SECRET_KEY` | the API secret key | required |
//! | `CATTLE_STACK` | the stack functions live in, created if missing | `openfaas-fn` |
//! | `CATTLE_INVOKE` | `dns`: call functions as `http://<service>.<stack>:8080` (the gateway runs in Rancher's network); `public-endpoints`: through the port 8080 each function container publishes on its host (a gateway outside it) | `dns` |

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_core::SharedProvider;
use provider_cattle::{CattleConfig, CattleProvider, Routing};

use super::{Backend, OpenFuture};
use crate::cli::Args;
use crate::error::GatewayError;

/// Connects to the Rancher API named by `CATTLE_URL` with the `CATTLE_*`
/// configuration.
pub(super) fn open(_args: &Args) -> OpenFuture<'_> {
    Box::pin(async move {
        let failed = |source| GatewayError::Provider { provider: "cattle", source };
        let config = config_from(|name| std::env::var(name).ok()).map_err(failed)?;
        let provider = CattleProvider::connect(config).await.map_err(failed)?;
        Ok(Box::new(Cattle(Arc::new(provider))) as Box<dyn Backend>)
    })
}

/// The configuration from the `CATTLE_*` variables, read through `lookup`.
fn config_from(lookup: impl Fn(&str) -> Option<String>) -> Result<CattleConfig, faas_core::Error> {
    let required = |name: &str| {
        lookup(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| faas_core::Error::invalid(name, "must be set for the cattle provider"))
    };
    let mut config =
        CattleConfig::new(required("CATTLE_URL")?, required("CATTLE_ACCESS_KEY")?, required("CATTLE_SECRET_KEY")?);
    if let Some(stack) = lookup("CATTLE_STACK").filter(|v| !v.trim().is_empty()) {
        config.stack = stack.trim().to_owned();
    }
    config.routing = match lookup("CATTLE_INVOKE").as_deref().map(str::trim) {
        None | Some("") | Some("dns") => Routing::ServiceDns { port: 8080 },
        Some("public-endpoints") => Routing::PublicEndpoints,
        Some(other) => {
            return Err(faas_core::Error::invalid(
                "CATTLE_INVOKE",
                format!("{other:?} is neither `dns` nor `public-endpoints`"),
            ))
        }
    };
    Ok(config)
}

struct Cattle(Arc<CattleProvider>);

#[async_trait]
impl Backend for Cattle {
    fn provider(&self) -> SharedProvider {
        self.0.clone()
    }

    /// Functions are Cattle services: they keep running when the gateway
    /// stops.
    async fn shutdown(&self, _grace: Duration) {}
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<CattleConfig, faas_core::Error> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        config_from(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_environment_configures_the_provider() {
        let base = [("CATTLE_URL", "http://rancher:8080/v1"), ("CATTLE_ACCESS_KEY", "a"), ("CATTLE_SECRET_KEY", "s")];
        let config = config(&base).unwrap();
        assert_eq!((config.stack.as_str(), &config.routing), ("openfaas-fn", &Routing::ServiceDns { port: 8080 }));
        assert_eq!(config.api_url().unwrap(), "http://rancher:8080/v2-beta");
        let mut more = base.to_vec();
        more.extend([("CATTLE_STACK", "functions"), ("CATTLE_INVOKE", "public-endpoints")]);
        let config = super::tests::config(&more).unwrap();
        assert_eq!((config.stack.as_str(), config.routing), ("functions", Routing::PublicEndpoints));
        let err = super::tests::config(&base[..2]).unwrap_err();
        assert!(matches!(err, faas_core::Error::Invalid { ref field, .. } if field == "CATTLE_SECRET_KEY"), "{err}");
        let mut bad = base.to_vec();
        bad.push(("CATTLE_INVOKE", "carrier-pigeon"));
        assert!(super::tests::config(&bad).is_err());
    }
}
