use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A provider's build, as `/system/info` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VersionInfo {
    /// The commit the build came from.
    pub sha: String,
    /// The release version.
    pub release: String,
    /// The commit's message, where known.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub commit_message: String,
}

/// What a provider is: `GET /system/info` on a provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderInfo {
    /// The provider's name (`local`, `swarm`, ...).
    #[serde(rename = "provider")]
    pub name: String,
    /// Its version.
    pub version: VersionInfo,
    /// The orchestration it drives (`process`, `swarm`, `kubernetes`, ...).
    pub orchestration: String,
    /// How function processes are isolated, for providers that run them
    /// on this machine (the local provider); absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxInfo>,
}

impl VersionInfo {
    /// A build of this workspace: `release` (the building crate's
    /// `CARGO_PKG_VERSION`) and the commit in `FAAS_GIT_SHA` when it was
    /// built (`unknown` when the variable was not set).
    ///
    /// ```
    /// let version = faas_core::VersionInfo::build("1.2.3");
    /// assert_eq!(version.release, "1.2.3");
    /// assert!(!version.sha.is_empty());
    /// ```
    pub fn build(release: &str) -> Self {
        VersionInfo {
            sha: option_env!("FAAS_GIT_SHA").unwrap_or("unknown").to_owned(),
            release: release.to_owned(),
            commit_message: String::new(),
        }
    }
}

impl ProviderInfo {
    /// The info of provider `name` built as [`VersionInfo::build`] of
    /// `release`, driving `orchestration`, with no sandbox.
    pub fn new(name: &str, release: &str, orchestration: &str) -> Self {
        ProviderInfo {
            name: name.to_owned(),
            version: VersionInfo::build(release),
            orchestration: orchestration.to_owned(),
            sandbox: None,
        }
    }
}

/// The isolation a provider gives function processes: what is in force on
/// this machine and what is not, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxInfo {
    /// The mode asked for: `off`, `auto` or `required`.
    pub mode: String,
    /// Each feature in force (`no-orphans`, `mount-namespace`,
    /// `read-only-root`, `memory-limit`, `cpu-limit`) and how it is done.
    pub features: BTreeMap<String, String>,
    /// Each feature not in force, and why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unavailable: BTreeMap<String, String>,
}

/// `GET /system/info` on a gateway: the provider's info, the gateway's own
/// version and the machine's architecture, as `faas-cli version` reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayInfo {
    /// The provider behind the gateway.
    pub provider: ProviderInfo,
    /// The gateway's version.
    pub version: VersionInfo,
    /// The CPU architecture the gateway runs on.
    pub arch: String,
}
