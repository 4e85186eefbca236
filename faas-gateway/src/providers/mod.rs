//! The providers compiled into this binary, one Cargo feature each, and
//! the choice among them (`--provider`).
//!
//! Adding a provider: a module here with an `open` function returning a
//! [`Backend`] (`local.rs` shows the shape), its feature in `Cargo.toml`,
//! and one [`ProviderEntry`] in `COMPILED_IN` under that feature.

#[cfg(not(any(feature = "local", feature = "swarm", feature = "cattle", feature = "k8s")))]
compile_error!(
    "faas-gateway was built without a provider: enable at least one of the features `local`, `swarm`, `k8s`, \
     `cattle` (the default feature `local` serves processes on this machine: drop `--no-default-features` or add \
     `--features local`)"
);

#[cfg(feature = "cattle")]
mod cattle;
#[cfg(feature = "k8s")]
mod k8s;
#[cfg(feature = "local")]
mod local;
#[cfg(feature = "swarm")]
mod swarm;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use faas_core::settings::Table;
use faas_core::SharedProvider;

use crate::cli::Args;
use crate::error::GatewayError;

/// A provider the gateway opened: what it serves, and how to stop it.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The provider to serve.
    fn provider(&self) -> SharedProvider;

    /// Stops the provider after the server drained: at most `grace` for
    /// whatever it still runs, then releases its resources.
    async fn shutdown(&self, grace: Duration);
}

/// What [`ProviderEntry::open`] returns.
pub type OpenFuture<'a> = Pin<Box<dyn Future<Output = Result<Box<dyn Backend>, GatewayError>> + Send + 'a>>;

/// A compiled-in provider.
#[derive(Debug, Clone, Copy)]
pub struct ProviderEntry {
    /// Its name, as `--provider` takes it.
    pub name: &'static str,
    /// Whether it runs functions on this machine (`local`); a remote
    /// orchestrator's provider is preferred when several are compiled in.
    pub is_local: bool,
    /// Opens it with the gateway's arguments.
    pub open: for<'a> fn(&'a Args) -> OpenFuture<'a>,
    /// The environment variables it reads itself (its settings that are
    /// not flags of the gateway), listed by `--help`.
    pub settings: Option<&'static Table>,
}

/// Every provider in this build, by feature.
const COMPILED_IN: &[ProviderEntry] = &[
    #[cfg(feature = "local")]
    ProviderEntry { name: "local", is_local: true, open: local::open, settings: None },
    #[cfg(feature = "swarm")]
    ProviderEntry {
        name: "swarm",
        is_local: false,
        open: swarm::open,
        settings: Some(&provider_swarm::settings::SETTINGS),
    },
    #[cfg(feature = "cattle")]
    ProviderEntry {
        name: "cattle",
        is_local: false,
        open: cattle::open,
        settings: Some(&provider_cattle::settings::SETTINGS),
    },
    #[cfg(feature = "k8s")]
    ProviderEntry { name: "k8s", is_local: false, open: k8s::open, settings: Some(&provider_k8s::settings::SETTINGS) },
];

/// The providers in this build.
pub fn compiled_in() -> &'static [ProviderEntry] {
    COMPILED_IN
}

/// What `--help` says after the flags: the environment variables of each
/// compiled-in provider configured by the environment, rendered from its
/// settings table ([`Table::help`]).
pub fn settings_help() -> String {
    COMPILED_IN.iter().filter_map(|e| e.settings).map(Table::help).collect::<Vec<_>>().join("\n")
}

/// Logs a warning for each variable in `names` that carries the prefix of
/// `table` but names none of its settings (a typo would otherwise be
/// ignored silently).
pub(crate) fn warn_unknown<'n>(table: &Table, names: impl IntoIterator<Item = &'n str>) -> usize {
    let unknown = table.unknown(names);
    for name in &unknown {
        tracing::warn!(variable = %name, provider = table.provider, "unknown {} variable: not one of the {} provider's settings, ignored", table.prefix, table.provider);
    }
    unknown.len()
}

/// The names of the process's environment variables.
pub(crate) fn process_var_names() -> Vec<String> {
    std::env::vars_os().filter_map(|(name, _)| name.into_string().ok()).collect()
}

/// Chooses the provider: the one named by `requested`, else the only
/// non-local one, else `local`.
pub fn select(requested: Option<&str>) -> Result<&'static ProviderEntry, GatewayError> {
    select_from(COMPILED_IN, requested)
}

fn select_from(
    entries: &'static [ProviderEntry],
    requested: Option<&str>,
) -> Result<&'static ProviderEntry, GatewayError> {
    let available = || entries.iter().map(|e| e.name).collect::<Vec<_>>().join(", ");
    if let Some(name) = requested.map(str::trim).filter(|n| !n.is_empty()) {
        return entries
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| GatewayError::UnknownProvider { requested: name.to_owned(), available: available() });
    }
    let mut remote = entries.iter().filter(|e| !e.is_local);
    match (remote.next(), remote.next()) {
        (Some(only), None) => Ok(only),
        (Some(_), Some(_)) => Err(GatewayError::AmbiguousProvider { available: available() }),
        (None, _) => {
            entries.iter().find(|e| e.is_local).ok_or(GatewayError::AmbiguousProvider { available: available() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never<'a>(_: &'a Args) -> OpenFuture<'a> {
        Box::pin(async { Err(GatewayError::NoDataDir) })
    }

    const LOCAL: ProviderEntry = ProviderEntry { name: "local", is_local: true, open: never, settings: None };
    const SWARM: ProviderEntry = ProviderEntry { name: "swarm", is_local: false, open: never, settings: None };
    const K8S: ProviderEntry = ProviderEntry { name: "k8s", is_local: false, open: never, settings: None };

    #[test]
    fn the_only_remote_provider_is_the_default() {
        static BOTH: [ProviderEntry; 2] = [LOCAL, SWARM];
        assert_eq!(select_from(&BOTH, None).unwrap().name, "swarm");
        assert_eq!(select_from(&BOTH, Some("local")).unwrap().name, "local");
        static ONLY_LOCAL: [ProviderEntry; 1] = [LOCAL];
        assert_eq!(select_from(&ONLY_LOCAL, None).unwrap().name, "local");
    }

    #[test]
    fn ambiguous_or_unknown_choices_are_errors() {
        static THREE: [ProviderEntry; 3] = [LOCAL, SWARM, K8S];
        assert!(matches!(select_from(&THREE, None), Err(GatewayError::AmbiguousProvider { .. })));
        assert_eq!(select_from(&THREE, Some("K8S")).unwrap().name, "k8s");
        let err = select_from(&THREE, Some("nomad")).unwrap_err().to_string();
        assert!(err.contains("\"nomad\"") && err.contains("local, swarm, k8s"), "{err}");
    }

    #[test]
    fn unknown_prefixed_variables_are_counted() {
        use faas_core::settings::{kind, Setting, Unset};
        static KNOWN: Setting<kind::Text> = Setting::new("T_KNOWN", kind::Text, Unset::Means("none"), "known");
        static TABLE: Table = Table { provider: "t", prefix: "T_", settings: &[&KNOWN] };
        assert_eq!(warn_unknown(&TABLE, ["T_KNOWN", "T_KNWON", "PATH"]), 1);
    }

    #[test]
    fn help_lists_the_settings_of_the_providers_compiled_in() {
        let help = settings_help();
        for table in COMPILED_IN.iter().filter_map(|e| e.settings) {
            assert!(help.contains(&table.help()), "{help}");
        }
    }

    // With a remote provider compiled in, that one is the default instead.
    #[cfg(all(feature = "local", not(any(feature = "swarm", feature = "cattle", feature = "k8s"))))]
    #[test]
    fn this_build_serves_local_by_default() {
        assert_eq!(select(None).unwrap().name, "local");
    }
}
