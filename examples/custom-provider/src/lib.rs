//! # custom-provider: a complete provider, written as a third party would
//!
//! A template for provider authors. It keeps functions, replicas, secrets,
//! namespaces and logs in memory and serves each function with an async
//! handler registered for its image name. It uses only `faas-core`'s public
//! API, supports every optional capability, and passes the whole
//! `faas-testkit` conformance suite. Copy it and replace the in-memory
//! parts with calls to your orchestrator.
//!
//! ## Writing a provider, step by step
//!
//! 1. **Implement [`faas_core::Provider`]** ([`provider.rs`](InMemoryProvider)).
//!    Every method is required. Validate what you are given
//!    ([`FunctionDeployment::validate`](faas_core::FunctionDeployment::validate),
//!    [`Secret::validate`](faas_core::Secret::validate),
//!    [`faas_core::validate`]) even though the HTTP API does too, since a
//!    provider can be used as a library. Never hold a lock across an
//!    `.await`; stream invocation bodies instead of collecting them.
//!    Keep state in its own module (`state.rs` here) so the trait impl stays
//!    a thin list of "validate, do, convert the error".
//! 2. **Declare your capabilities** in [`Provider::capabilities`](faas_core::Provider::capabilities).
//!    Set the flags you support on [`faas_core::Capabilities::default`] (or
//!    take [`faas_core::Capabilities::all`], as here); every operation whose
//!    flag is false must return [`faas_core::Error::Unsupported`].
//! 3. **Map your errors** (`error.rs`). Keep a private error enum that
//!    describes your own layer, with the underlying cause as its
//!    `#[source]`, and write one `From<YourError> for faas_core::Error`
//!    choosing the variant (and so the HTTP status): `NotFound`,
//!    `AlreadyExists`, `Invalid { field }`, `Unavailable`, `Backend`...
//! 4. **Run the conformance kit** with its macro, in `tests/conformance.rs`:
//!
//!    ```ignore
//!    use std::sync::Arc;
//!    use custom_provider::InMemoryProvider;
//!    use faas_core::FunctionDeployment;
//!    use faas_testkit::{function::respond, Subject};
//!
//!    async fn subject() -> Subject {
//!        let provider = InMemoryProvider::new().with_handler("conformance", |request, cx| async move {
//!            respond(request, &cx.env, &cx.secrets, &|line| cx.log(line)).await
//!        });
//!        Subject::new(Arc::new(provider), |name, namespace| FunctionDeployment {
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
//!    `cargo test` then runs one test per scenario. A provider that runs
//!    the watchdog deploys `faas_testkit::function::SHELL_SCRIPT` instead of
//!    registering a handler; see the `faas-testkit` crate docs.
//!
//! ## Embedding
//!
//! The provider is an ordinary value: build it, share it as an
//! `Arc<dyn Provider>` (which is also what the HTTP API in `faas-core`
//! serves), and call it.
//!
//! ```
//! use std::sync::Arc;
//!
//! use custom_provider::{FunctionContext, InMemoryProvider};
//! use faas_core::{Body, FunctionDeployment, FunctionRef, Provider};
//! use http::{Request, Response};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> faas_core::Result<()> {
//! let provider = InMemoryProvider::new().with_handler("greeter", |_request: Request<Body>, cx: FunctionContext| async move {
//!     cx.log("greeting someone");
//!     let who = cx.env.get("WHO").cloned().unwrap_or_else(|| "world".to_owned());
//!     Response::new(Body::from(format!("hello, {who}")))
//! });
//! let provider: Arc<dyn Provider> = Arc::new(provider);
//!
//! provider
//!     .deploy(FunctionDeployment {
//!         service: "hello".to_owned(),
//!         image: "greeter".to_owned(),
//!         env_vars: [("WHO".to_owned(), "reader".to_owned())].into(),
//!         ..FunctionDeployment::default()
//!     })
//!     .await?;
//!
//! let hello = FunctionRef::new("hello", ""); // "" is the default namespace
//! let response = provider.invoke(&hello, Request::new(Body::empty())).await?;
//! let body = response.into_body().collect_limited(1024).await?;
//! assert_eq!(body, "hello, reader");
//! assert_eq!(provider.status(&hello).await?.invocation_count, 1.0);
//! # Ok(())
//! # }
//! ```

mod error;
mod handler;
mod logs;
mod provider;
mod state;

pub use handler::FunctionContext;
pub use provider::{InMemoryProvider, DEFAULT_LOG_CAPACITY};
