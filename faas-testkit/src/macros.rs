//! The macro that turns the scenarios into tests.

/// Expands into a module of tests, one `#[tokio::test]` (multi-threaded,
/// two workers) per scenario in [`scenarios`](crate::scenarios), each
/// building its own [`Subject`](crate::Subject) from the given future and
/// running the scenario against it.
///
/// ```ignore
/// // tests/conformance.rs of a provider crate
/// async fn subject() -> faas_testkit::Subject {
///     faas_testkit::Subject::new(my_provider(), |name, namespace| my_conformance_deployment(name, namespace))
/// }
/// faas_testkit::conformance_tests!(async { subject().await });
/// ```
///
/// The expression is evaluated once per test, inside the test's runtime,
/// and must be a future whose output is a `Subject`. The module is named
/// `conformance`; name it yourself with
/// `conformance_tests!(mod my_name, async { ... })`, for instance to run
/// the kit against two configurations in one file. Items of the calling
/// module are in scope in the expression. Tokio is taken from the kit's
/// re-export, so the calling crate needs no tokio dependency of its own.
#[macro_export]
macro_rules! conformance_tests {
    (mod $module:ident, $subject:expr $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            // `#[tokio::test]` and the code it generates find tokio here.
            use $crate::tokio;

            $crate::conformance_tests!(@scenarios $subject;
                lifecycle duplicate_deploy invalid_names unknown_function secrets logs
                large_body concurrent_invocations capabilities namespaces function_label status_shape
                initial_replicas);
        }
    };
    (@scenarios $subject:expr; $($scenario:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let subject: $crate::Subject = $subject.await;
                $crate::scenarios::$scenario(&subject).await;
            }
        )*
    };
    ($subject:expr $(,)?) => {
        $crate::conformance_tests!(mod conformance, $subject);
    };
}
