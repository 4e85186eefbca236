//! Helpers for scenarios and for provider authors' own tests.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use faas_core::{Body, Error, FunctionRef, Provider, Result};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::time::Instant;

/// How often [`wait_for`] checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Calls `function` through `provider` and reads the whole response.
///
/// `path_and_query` is the path below the function (`/` at least) with an
/// optional query. Errors from the provider are returned as they are; a
/// response body that fails mid-stream is an [`Error::Backend`]. Meant for
/// small responses: the body is collected in memory.
pub async fn invoke_bytes(
    provider: &dyn Provider,
    function: &FunctionRef,
    method: Method,
    path_and_query: &str,
    headers: HeaderMap,
    body: impl Into<Body>,
) -> Result<(StatusCode, HeaderMap, Bytes)> {
    let mut request = Request::builder()
        .method(method)
        .uri(path_and_query)
        .body(body.into())
        .map_err(|e| Error::invalid("uri", format!("{path_and_query:?} is not a path and query: {e}")))?;
    *request.headers_mut() = headers;
    let response = provider.invoke(function, request).await?;
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|e| Error::backend("faas-testkit", format!("the response of {function} failed mid-stream"), e))?
        .to_bytes();
    Ok((parts.status, parts.headers, bytes))
}

/// Polls `check` every [`POLL_INTERVAL`] until it returns `Ok`, and returns
/// that value; panics once `settle` has passed, naming `what` and the last
/// `Err` seen (what was observed instead).
///
/// Each call of `check` is itself bounded by the time left, so a hanging
/// check fails the wait instead of stalling it. `check` runs at least once.
pub async fn wait_for<T, E, F, Fut>(settle: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, E>>,
    E: Display,
{
    let deadline = Instant::now() + settle;
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).max(POLL_INTERVAL);
        let last = match tokio::time::timeout(left, check()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(observed)) => observed.to_string(),
            Err(_) => format!("the check itself did not finish within {left:?}"),
        };
        if Instant::now() >= deadline {
            panic!("timed out after {settle:?} waiting for {what}; last observed: {last}");
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// What the conformance function's echo path answers for a request.
pub fn echo_expected(method: &Method, path: &str, query: &str, header: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("method={method}\npath={path}\nquery={query}\nheader={header}\nbody=").into_bytes();
    out.extend_from_slice(body);
    out
}

/// Unwraps a provider result, panicking with `what` and the error.
#[track_caller]
pub fn ok<T>(what: &str, result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what} failed: {}", err.message()),
    }
}

/// Asserts that a provider result is the error `expected` describes (for
/// instance `"NotFound"`), as decided by `matches`; panics naming `what`,
/// the expectation and what came back.
#[track_caller]
pub fn expect_err<T: std::fmt::Debug>(what: &str, result: Result<T>, expected: &str, matches: impl Fn(&Error) -> bool) {
    match result {
        Err(err) if matches(&err) => {}
        Err(err) => panic!("{what}: expected {expected}, got the error {err:?}"),
        Ok(value) => panic!("{what}: expected {expected}, got Ok({value:?})"),
    }
}

/// Asserts `Error::NotFound` of `kind` (`function`, `secret`, `namespace`).
#[track_caller]
pub fn expect_not_found<T: std::fmt::Debug>(what: &str, result: Result<T>, kind: &str) {
    let expected = format!("Error::NotFound {{ kind: {kind:?}, .. }}");
    expect_err(what, result, &expected, |e| matches!(e, Error::NotFound { kind: k, .. } if *k == kind));
}

/// Asserts `Error::AlreadyExists`.
#[track_caller]
pub fn expect_already_exists<T: std::fmt::Debug>(what: &str, result: Result<T>) {
    expect_err(what, result, "Error::AlreadyExists", |e| matches!(e, Error::AlreadyExists { .. }));
}

/// Asserts `Error::Unsupported`.
#[track_caller]
pub fn expect_unsupported<T: std::fmt::Debug>(what: &str, result: Result<T>) {
    expect_err(what, result, "Error::Unsupported", |e| matches!(e, Error::Unsupported { .. }));
}

/// Asserts `Error::Invalid` naming `field`.
#[track_caller]
pub fn expect_invalid<T: std::fmt::Debug>(what: &str, result: Result<T>, field: &str) {
    let expected = format!("Error::Invalid {{ field: {field:?}, .. }}");
    expect_err(what, result, &expected, |e| matches!(e, Error::Invalid { field: f, .. } if f == field));
}

/// Panics unless the Markdown file at `path` has, under its `## Settings`
/// heading, exactly the table `table` renders
/// ([`faas_core::settings::Table::markdown`]); the message gives the table
/// to paste. For a provider's test that its docs list its settings.
pub fn assert_settings_documented(table: &faas_core::settings::Table, path: impl AsRef<std::path::Path>) {
    let path = path.as_ref();
    let document = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if let Err(difference) = table.check_documented(&document, "## Settings") {
        panic!("{} does not list the {} settings: {difference}", path.display(), table.provider);
    }
}

/// Panics unless `read` (a configuration's reader, e.g. `K8sConfig::read`)
/// reads and checks every setting of `table`: with `base` set (values for
/// the required settings), each setting set to a value its kind refuses is
/// `Invalid` naming it, and each required one left out is too. Shows the
/// table lists nothing the configuration ignores.
pub fn assert_settings_read<T: std::fmt::Debug>(
    table: &faas_core::settings::Table,
    read: impl Fn(&faas_core::settings::Vars<'_>) -> Result<T>,
    base: &[(&str, &str)],
) {
    use faas_core::settings::{Unset, Vars};
    let named = |vars: Vars<'static>, name: &str, case: &str| match read(&vars) {
        Err(Error::Invalid { field, .. }) if field == name => {}
        other => panic!("{} settings: {case}: expected Invalid naming {name}, got {other:?}", table.provider),
    };
    read(&Vars::from_pairs(base.iter().copied())).unwrap_or_else(|e| panic!("the base settings are valid: {e}"));
    for setting in table.settings {
        let name = setting.name();
        if let Some(refused) = setting.refused_example() {
            let vars = base.iter().copied().filter(|(n, _)| *n != name).chain([(name, refused)]);
            named(Vars::from_pairs(vars), name, &format!("{name}={refused:?}"));
        }
        if setting.unset() == Unset::Required {
            named(Vars::from_pairs(base.iter().copied().filter(|(n, _)| *n != name)), name, "left out");
        }
    }
}
