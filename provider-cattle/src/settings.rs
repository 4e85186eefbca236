//! The cattle provider's environment variables, declared once: Rancher's
//! own names for the API and its keys, `CATTLE_*` for the rest. The
//! configuration reads them ([`crate::CattleConfig::from_env`]), the docs
//! (`docs/cattle.md`, "Settings") and the gateway's `--help` list them.

use faas_core::settings::{kind, Setting, Table, Unset};

use crate::config::{CattleConfig, Routing};

/// `CATTLE_URL`: [`CattleConfig::url`].
pub static URL: Setting<kind::Text> = Setting::new(
    "CATTLE_URL",
    kind::Text,
    Unset::Required,
    "the Rancher API: `http://host:8080`, `.../v1`, `.../v2-beta` or an environment's `.../v2-beta/projects/<id>` \
     (`/v1` is normalised to `/v2-beta`); plain HTTP (put a TLS-terminating proxy in front of an HTTPS-only server)",
);

/// `CATTLE_ACCESS_KEY`: [`CattleConfig::access_key`].
pub static ACCESS_KEY: Setting<kind::Text> =
    Setting::new("CATTLE_ACCESS_KEY", kind::Text, Unset::Required, "the access key of an environment API key");

/// `CATTLE_SECRET_KEY`: [`CattleConfig::secret_key`], never shown.
pub static SECRET_KEY: Setting<kind::Secret> =
    Setting::new("CATTLE_SECRET_KEY", kind::Secret, Unset::Required, "the secret key of that API key (never logged)");

/// `CATTLE_STACK`: [`CattleConfig::stack`].
pub static STACK: Setting<kind::Text> = Setting::new(
    "CATTLE_STACK",
    kind::Text,
    Unset::Default(CattleConfig::DEFAULT_STACK),
    "the stack functions live in, created if missing",
);

/// `CATTLE_INVOKE`: [`CattleConfig::routing`].
pub static INVOKE: Setting<kind::Choice<Routing>> = Setting::new(
    "CATTLE_INVOKE",
    kind::Choice(&[("dns", Routing::ServiceDns { port: 8080 }), ("public-endpoints", Routing::PublicEndpoints)]),
    Unset::Default("dns"),
    "`dns`: call `http://<service>.<stack>:8080` (gateway inside Rancher's network); `public-endpoints`: call the \
     host port each healthy container publishes for 8080 (gateway outside it)",
);

/// Every environment variable of the cattle provider: the docs
/// (`docs/cattle.md`) and the gateway's `--help` list them from here.
pub static SETTINGS: Table =
    Table { provider: "cattle", prefix: "CATTLE_", settings: &[&URL, &ACCESS_KEY, &SECRET_KEY, &STACK, &INVOKE] };
