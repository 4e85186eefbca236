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
