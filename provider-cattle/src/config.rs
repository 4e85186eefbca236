//! The provider's configuration: where the Rancher API is, the keys, the
//! stack, how calls reach functions, and the bounds on every wait.

use std::time::Duration;

use faas_core::settings::Vars;

use crate::error::CattleError;
use crate::settings::{ACCESS_KEY, INVOKE, SECRET_KEY, STACK, URL};

/// How calls reach a function's instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// By the service's DNS name in Rancher's managed network,
    /// `http://<service>.<stack>:<port>`: for a gateway running as a
    /// Rancher service itself (Rancher's DNS answers with the service's
    /// healthy containers).
    ServiceDns {
        /// The watchdog's port in the containers (8080).
        port: u16,
    },
    /// By the service's `publicEndpoints` (host IP and published port of
    /// each instance): for a gateway outside Rancher's network. Functions
    /// are deployed with the watchdog's port 8080 published
    /// (`ports: ["8080/tcp"]`, a host port chosen by Rancher).
    PublicEndpoints,
}

/// The health check every function's launch config gets: an HTTP check
/// of the watchdog's `/_/health` on port 8080.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Time between checks.
    pub interval: Duration,
    /// How long a check may take.
    pub response_timeout: Duration,
    /// Passed checks in a row to become healthy.
    pub healthy_threshold: u32,
    /// Failed checks in a row to become unhealthy.
    pub unhealthy_threshold: u32,
    /// How long a new container may stay initializing.
    pub initializing_timeout: Duration,
}

impl Default for HealthCheck {
    /// Rancher's defaults: every 2 s, 2 s timeout, healthy after 2 passes,
    /// unhealthy after 3 failures, 60 s to initialise.
    fn default() -> Self {
        HealthCheck {
            interval: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            initializing_timeout: Duration::from_secs(60),
        }
    }
}

/// How to reach Rancher and run functions there.
#[derive(Clone)]
pub struct CattleConfig {
    /// The API endpoint: `http://host:8080`, `.../v1`, `.../v2-beta` or a
    /// project (environment) URL `.../v2-beta/projects/1a5`. `/v1` is
    /// normalised to `/v2-beta`, and a URL without a version gets
    /// `/v2-beta`. Plain HTTP only: put a TLS-terminating proxy in front of
    /// an HTTPS-only server.
    pub url: String,
    /// The API access key (HTTP Basic user).
    pub access_key: String,
    /// The API secret key (HTTP Basic password). Never logged.
    pub secret_key: String,
    /// The stack functions live in; created if missing. Default `openfaas-fn`.
    pub stack: String,
    /// How calls reach functions. Default [`Routing::ServiceDns`] on 8080.
    pub routing: Routing,
    /// The health check put on every function.
    pub health_check: HealthCheck,
    /// Pause between batches of an upgrade (`intervalMillis`). Default 2 s.
    pub upgrade_interval: Duration,
    /// How long an upgrade may take to reach `upgraded` before it is
    /// rolled back. Default 5 minutes.
    pub upgrade_timeout: Duration,
    /// How long any other transition (`activating`, `removing`,
    /// `finishing-upgrade`, `rolling-back`, ...) is waited for. Default 2
    /// minutes.
    pub transition_timeout: Duration,
    /// First pause between polls of a transitioning resource; it doubles
    /// up to 2 s. Default 100 ms.
    pub poll_interval: Duration,
    /// How long one API request may take. Default 30 s.
    pub request_timeout: Duration,
    /// How long a function's resolved addresses are reused by calls.
    /// Default 250 ms.
    pub endpoint_cache_ttl: Duration,
}

impl std::fmt::Debug for CattleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CattleConfig")
            .field("url", &self.url)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("stack", &self.stack)
            .field("routing", &self.routing)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("transition_timeout", &self.transition_timeout)
            .finish_non_exhaustive()
    }
}

impl CattleConfig {
    /// The stack used when none is configured.
    pub const DEFAULT_STACK: &'static str = "openfaas-fn";

    /// A configuration with the defaults for everything but the endpoint
    /// and the keys.
    pub fn new(url: impl Into<String>, access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        CattleConfig {
            url: url.into(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            stack: Self::DEFAULT_STACK.to_owned(),
            routing: Routing::ServiceDns { port: 8080 },
            health_check: HealthCheck::default(),
            upgrade_interval: Duration::from_secs(2),
            upgrade_timeout: Duration::from_secs(300),
            transition_timeout: Duration::from_secs(120),
            poll_interval: Duration::from_millis(100),
            request_timeout: Duration::from_secs(30),
            endpoint_cache_ttl: Duration::from_millis(250),
        }
    }

    /// The configuration from the environment: Rancher's own variables for
    /// the API and its keys, `CATTLE_*` for the rest (see
    /// [`crate::settings::SETTINGS`]). `Invalid` naming the variable when
    /// one is missing or wrong.
    pub fn from_env() -> Result<Self, faas_core::Error> {
        Self::read(&Vars::process())
    }

    /// As [`CattleConfig::from_env`], reading variables through `lookup`.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, faas_core::Error> {
        Self::read(&Vars::new(lookup))
    }

    /// As [`CattleConfig::from_env`], reading variables from `vars`.
    pub fn read(vars: &Vars<'_>) -> Result<Self, faas_core::Error> {
        let mut config = CattleConfig::new(vars.value(&URL)?, vars.value(&ACCESS_KEY)?, vars.value(&SECRET_KEY)?);
        config.stack = vars.value(&STACK)?;
        config.routing = vars.value(&INVOKE)?;
        Ok(config)
    }

    /// The v2-beta API URL this configuration points at.
    pub fn api_url(&self) -> Result<String, faas_core::Error> {
        Ok(normalise_url(&self.url)?)
    }
}

/// `url` with `/v1` replaced by `/v2-beta` (or `/v2-beta` added when it
/// names no version), without a trailing slash.
pub(crate) fn normalise_url(url: &str) -> Result<String, CattleError> {
    let bad = |reason: &str| CattleError::Url { url: url.to_owned(), reason: reason.to_owned() };
    let trimmed = url.trim();
    let rest = match trimmed.strip_prefix("http://") {
        Some(rest) => rest,
        None if trimmed.starts_with("https://") => {
            return Err(bad("https is not supported by this provider: use http, or a TLS-terminating proxy"))
        }
        None => return Err(bad("it must start with http://")),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(bad("it names no host"));
    }
    if path.contains('?') || path.contains('#') {
        return Err(bad("it must not carry a query or fragment"));
    }
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.iter().position(|s| *s == "v1" || *s == "v2-beta") {
        Some(i) => segments[i] = "v2-beta",
        None if segments.is_empty() => segments.push("v2-beta"),
        None => return Err(bad("its path names no API version (/v1 or /v2-beta)")),
    }
    Ok(format!("http://{authority}/{}", segments.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SETTINGS;

    fn from(vars: &[(&str, &str)]) -> Result<CattleConfig, faas_core::Error> {
        CattleConfig::read(&Vars::from_pairs(vars.iter().copied()))
    }

    #[test]
    fn the_environment_configures_the_provider() {
        SETTINGS.check().unwrap();
        let base = [("CATTLE_URL", "http://rancher:8080/v1"), ("CATTLE_ACCESS_KEY", "a"), ("CATTLE_SECRET_KEY", "s")];
        let config = from(&base).unwrap();
        assert_eq!((config.stack.as_str(), &config.routing), ("openfaas-fn", &Routing::ServiceDns { port: 8080 }));
        assert_eq!(config.api_url().unwrap(), "http://rancher:8080/v2-beta");
        let mut more = base.to_vec();
        more.extend([("CATTLE_STACK", "functions"), ("CATTLE_INVOKE", "public-endpoints")]);
        let config = from(&more).unwrap();
        assert_eq!((config.stack.as_str(), config.routing), ("functions", Routing::PublicEndpoints));
        let err = from(&base[..2]).unwrap_err();
        assert!(matches!(err, faas_core::Error::Invalid { ref field, .. } if field == "CATTLE_SECRET_KEY"), "{err}");
        let mut bad = base.to_vec();
        bad.push(("CATTLE_INVOKE", "carrier-pigeon"));
        let err = from(&bad).unwrap_err().to_string();
        assert!(err.contains("CATTLE_INVOKE") && err.contains("`dns` or `public-endpoints`"), "{err}");
    }

    #[test]
    fn every_setting_is_read_checked_and_documented() {
        let keys = [("CATTLE_URL", "http://r:8080"), ("CATTLE_ACCESS_KEY", "a"), ("CATTLE_SECRET_KEY", "s")];
        faas_testkit::assert_settings_read(&SETTINGS, CattleConfig::read, &keys);
        faas_testkit::assert_settings_documented(&SETTINGS, concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cattle.md"));
    }

    #[test]
    fn v1_is_normalised_to_v2_beta() {
        let n = |u: &str| normalise_url(u).unwrap();
        assert_eq!(n("http://rancher:8080"), "http://rancher:8080/v2-beta");
        assert_eq!(n("http://rancher:8080/"), "http://rancher:8080/v2-beta");
        assert_eq!(n("http://rancher:8080/v1"), "http://rancher:8080/v2-beta");
        assert_eq!(n("http://rancher:8080/v1/"), "http://rancher:8080/v2-beta");
        assert_eq!(n("http://rancher:8080/v1/projects/1a5"), "http://rancher:8080/v2-beta/projects/1a5");
        assert_eq!(n("http://rancher:8080/v2-beta/projects/1a5/"), "http://rancher:8080/v2-beta/projects/1a5");
        assert_eq!(n(" http://10.0.0.1:8080//v2-beta "), "http://10.0.0.1:8080/v2-beta");
        assert!(normalise_url("https://rancher").unwrap_err().to_string().contains("TLS-terminating proxy"));
        assert!(normalise_url("rancher:8080").is_err());
        assert!(normalise_url("http://rancher:8080/api").is_err());
        assert!(normalise_url("http:///v1").is_err());
    }

    #[test]
    fn the_secret_key_is_never_shown() {
        let config = CattleConfig::new("http://r:8080", "access", "very-secret");
        assert!(!format!("{config:?}").contains("very-secret"));
        let vars = Vars::from_pairs([("CATTLE_URL", "http://r:8080"), ("CATTLE_SECRET_KEY", "very-secret")]);
        let err = CattleConfig::read(&vars).unwrap_err().to_string();
        assert!(err.contains("CATTLE_ACCESS_KEY") && !err.contains("very-secret"), "{err}");
        assert!(SETTINGS.entry("CATTLE_SECRET_KEY").is_some_and(|s| s.is_secret()));
        let shown = format!("{vars:?}{SETTINGS:?}{}{}", SETTINGS.markdown(), SETTINGS.help());
        assert!(!shown.contains("very-secret"), "{shown}");
    }
}
