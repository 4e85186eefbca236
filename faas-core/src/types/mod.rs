//! Domain types, JSON wire-compatible with OpenFaaS's provider API.
//!
//! Field names follow OpenFaaS exactly (`service`, `envProcess`,
//! `availableReplicas`, ...). Unknown fields are ignored and `null` is read
//! as "absent", as Go's `encoding/json` does, so any OpenFaaS client's
//! payload is accepted; zero values are omitted where OpenFaaS omits them.

mod function;
mod info;
mod logs;
mod namespace;
mod secret;
#[cfg(feature = "api")]
pub(crate) mod status_json;
mod timestamp;

pub use function::{
    DeleteFunctionRequest, FunctionDeployment, FunctionRef, FunctionResources, FunctionStatus, FunctionUsage,
    ScaleServiceRequest,
};
pub use info::{GatewayInfo, ProviderInfo, SandboxInfo, VersionInfo};
pub use logs::{LogMessage, LogRequest};
pub use namespace::FunctionNamespace;
pub use secret::Secret;
pub(crate) use timestamp::rfc3339;

/// The namespace functions live in when a request names none, as OpenFaaS
/// clients assume.
pub const DEFAULT_NAMESPACE: &str = "openfaas-fn";

/// The label every function carries in `list` and `status`, valued with
/// its name, as OpenFaaS's providers set it (tools select functions on
/// it). See [`FunctionDeployment::labels_with_function`].
pub const FUNCTION_LABEL: &str = "faas_function";

/// The label giving a new function's replicas, OpenFaaS's
/// `com.openfaas.scale.min`. See [`FunctionDeployment::initial_replicas`].
pub const SCALE_MIN_LABEL: &str = "com.openfaas.scale.min";

/// Serde helper: writes an absent map as `{}`, so the field is never
/// `null` or missing.
pub(crate) fn map_or_empty<S: serde::Serializer>(
    value: &Option<std::collections::BTreeMap<String, String>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    match value {
        Some(map) => map.serialize(serializer),
        None => std::collections::BTreeMap::<String, String>::new().serialize(serializer),
    }
}

/// Serde helper: reads `null` as the type's default, as Go does for maps
/// and slices.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Serde helper for `skip_serializing_if`: Go's `omitempty` on numbers.
pub(crate) fn is_zero_u64(value: &u64) -> bool {
    *value == 0
}

/// Serde helper for `skip_serializing_if`: Go's `omitempty` on floats.
pub(crate) fn is_zero_f64(value: &f64) -> bool {
    *value == 0.0
}

/// Serde helper: writes a float as Go's `encoding/json` does, without a
/// fractional part when it has none (`1337`, not `1337.0`).
pub(crate) fn go_float<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 9.007_199_254_740_992e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// Serde helper for `skip_serializing_if`: Go's `omitempty` on booleans.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}
