//! # faas-testkit
//!
//! The conformance suite every [`faas_core::Provider`] runs. It checks the
//! promises of the contract from the outside: lifecycle, errors, naming
//! rules, secrets, logs, streaming bodies, concurrency, capabilities and
//! namespaces, each as one [scenario](scenarios) you can run alone or all
//! at once with [`conformance_tests!`].
//!
//! ## Running the kit against your provider, step by step
//!
//! 1. **Add the dev-dependency.** In your provider crate's `Cargo.toml`:
//!    `[dev-dependencies] faas-testkit = "0.1"`. The kit re-exports the
//!    tokio it runs on, so you need nothing else for the tests.
//! 2. **Make the conformance function deployable.** Every scenario
//!    deploys a function that obeys the protocol in [`function`]: echo,
//!    `/env/NAME`, `/secret/NAME`, `/log/TEXT` and `/cat`.
//!    - Providers that run the watchdog (processes, containers): write
//!      [`function::SHELL_SCRIPT`] somewhere your functions can read it
//!      ([`function::write_shell_script`]) and deploy with
//!      `envProcess = "sh <path>"` and an image that has `sh` and `cat`.
//!      Where the functions run on this machine, [`function::ShellFunction`]
//!      does both and builds the subject of step 3.
//!    - Providers that run in-process handlers: route the image you choose
//!      to [`function::respond`].
//! 3. **Build a [`Subject`].** It holds your provider as an
//!    `Arc<dyn Provider>` and a closure `(name, namespace) ->
//!    FunctionDeployment` that deploys the conformance function under that
//!    name; the kit adds env vars, secrets and labels on top. Raise
//!    [`Subject::with_settle`] if your backend needs more than 30 seconds to
//!    converge (start replicas, apply an update, ship logs).
//! 4. **Declare your capabilities honestly.** Scenarios skip what
//!    [`faas_core::Capabilities`] says is unsupported (printing
//!    `skipped: <scenario>: provider does not support <x>`), and the
//!    `capabilities` scenario checks that each unsupported operation
//!    returns [`faas_core::Error::Unsupported`].
//! 5. **Generate the tests.** In `tests/conformance.rs`:
//!
//!    ```ignore
//!    use std::sync::Arc;
//!    use faas_core::FunctionDeployment;
//!    use faas_testkit::Subject;
//!
//!    async fn subject() -> Subject {
//!        let provider = Arc::new(MyProvider::connect().await.unwrap());
//!        Subject::new(provider, |name, namespace| FunctionDeployment {
//!            service: name.to_owned(),
//!            namespace: namespace.to_owned(),
//!            image: "conformance".to_owned(),
//!            ..FunctionDeployment::default()
//!        })
//!    }
//!
//!    faas_testkit::conformance_tests!(async { subject().await });
//!    ```
//!
//!    `cargo test --test conformance` then runs one test per scenario
//!    (`conformance::lifecycle`, `conformance::secrets`, ...). To run one
//!    scenario from a test of your own, call it directly:
//!    `faas_testkit::scenarios::lifecycle(&subject).await`.
//! 6. **Read failures.** Each scenario panics with the step that broke,
//!    what was expected and what came back. Everything a scenario creates is
//!    named with a unique prefix (`ct<8 hex>-`) and deleted when it ends,
//!    also when it fails, so runs against a shared backend do not collide
//!    or leak.
//!
//! Waiting for eventual states is polling ([`wait_for`]) bounded by the
//! subject's settle time, and each scenario as a whole is bounded by
//! [`Subject::scenario_deadline`]: a hung provider fails the test instead of
//! stalling it. The helpers ([`invoke_bytes`], [`wait_for`], [`Scenario`])
//! are public for your own provider-specific tests.

pub mod function;
mod helpers;
mod macros;
mod scenario;
pub mod scenarios;
mod subject;

pub use helpers::{
    assert_settings_documented, assert_settings_read, echo_expected, expect_already_exists, expect_err, expect_invalid,
    expect_not_found, expect_unsupported, invoke_bytes, ok, wait_for, POLL_INTERVAL,
};
pub use scenario::{run_scenario, Scenario, SCENARIO_LABEL};
pub use subject::{FunctionBuilder, Subject};

#[doc(hidden)]
pub use tokio;
