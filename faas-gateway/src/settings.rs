//! The local provider's settings: flags of the gateway (the state
//! directory also holds the embedded asynchronous queue, so both flags
//! exist in every build), declared once here. `cli::Args` takes each
//! flag's variable, default, accepted values and help from this table, and
//! `docs/local.md` ("Settings") is checked against it.

use faas_core::settings::{kind, Setting, Table, Unset};

/// `FAAS_STATE_DIR` (`--state-dir`).
pub static STATE_DIR: Setting<kind::Text> = Setting::new(
    "FAAS_STATE_DIR",
    kind::Text,
    Unset::Means("`faas-rs/local` in the user data directory (`~/.local/share/faas-rs/local`)"),
    "where deployments, replicas, secrets and the lock are kept; they come back running when the \
     gateway restarts. One gateway per state dir: a second one waits up to 5 s for the lock (a killed \
     gateway's function processes may hold it until they exit), then exits naming the holder's pid",
);

/// `FAAS_SANDBOX` (`--sandbox`).
pub static SANDBOX: Setting<kind::Choice<&'static str>> = Setting::new(
    "FAAS_SANDBOX",
    kind::Choice(&[("auto", "auto"), ("required", "required"), ("off", "off")]),
    Unset::Default("auto"),
    "`auto` uses the isolation this machine allows (no orphans, a mount namespace per instance, cgroup \
     limits); `required` refuses to start naming a missing feature; `off` runs processes bare; what is in force is \
     listed in `/system/info` under `provider.sandbox`",
);

/// The local provider's settings.
pub static LOCAL: Table = Table { provider: "local", prefix: "FAAS_", settings: &[&STATE_DIR, &SANDBOX] };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_table_is_sound() {
        LOCAL.check().unwrap();
    }

    #[test]
    fn the_docs_list_these_settings() {
        faas_testkit::assert_settings_documented(&LOCAL, concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/local.md"));
    }
}
