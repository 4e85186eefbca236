//! The web portal at `/ui/`: plain HTML, CSS and JavaScript modules
//! embedded in the binary, using only the gateway's own API (so it works
//! on every provider). `GET /` redirects browsers (requests accepting
//! `text/html`) to it.
//!
//! The assets hold no data: they are served without credentials, and the
//! page asks for the basic auth credentials when the API answers 401, then
//! sends them with every call it makes. A Content-Security-Policy allowing
//! only this origin's scripts backs up the page's rule of showing every
//! name, label, log line and answer as text.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// Where the portal is served.
pub const UI_PATH: &str = "/ui/";

/// The Content-Security-Policy of every asset.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

macro_rules! assets {
    ($($path:literal => $kind:literal),* $(,)?) => {
        /// Every asset: path under `/ui/`, content type, content.
        const ASSETS: &[(&str, &str, &str)] = &[
            $(($path, $kind, include_str!(concat!("assets/", $path))),)*
        ];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "js/main.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/dom.js" => "text/javascript; charset=utf-8",
    "js/list.js" => "text/javascript; charset=utf-8",
    "js/function.js" => "text/javascript; charset=utf-8",
    "js/invoke.js" => "text/javascript; charset=utf-8",
    "js/logs.js" => "text/javascript; charset=utf-8",
    "js/charts.js" => "text/javascript; charset=utf-8",
    "js/deploy.js" => "text/javascript; charset=utf-8",
    "js/secrets.js" => "text/javascript; charset=utf-8",
    "js/dead_letters.js" => "text/javascript; charset=utf-8",
}

/// The portal's routes: `/ui`, `/ui/`, `/ui/{asset}` and `/`.
pub fn router() -> Router {
    Router::new()
        .route("/", get(root))
        .route("/ui", get(|| async { Redirect::to(UI_PATH) }))
        .route(UI_PATH, get(|| async { asset("index.html") }))
        .route("/ui/{*file}", get(|Path(file): Path<String>| async move { asset(&file) }))
}

/// A browser asking for `/` gets the portal; an API client gets 404 as for
/// any unknown route.
async fn root(headers: HeaderMap) -> Response {
    let browser = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if browser {
        Redirect::to(UI_PATH).into_response()
    } else {
        faas_core::Error::NotFound { kind: "route", name: "/".to_owned() }.into_response()
    }
}

fn asset(path: &str) -> Response {
    let Some((_, kind, content)) = ASSETS.iter().find(|(p, _, _)| *p == path) else {
        return faas_core::Error::NotFound { kind: "portal asset", name: path.to_owned() }.into_response();
    };
    let mut response = (StatusCode::OK, *content).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn get(path: &str, accept: &str) -> Response {
        let request = http::Request::get(path).header("accept", accept).body(axum::body::Body::empty()).unwrap();
        router().oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn assets_are_served_with_their_type_and_policy_and_browsers_are_sent_to_the_portal() {
        let index = get("/ui/", "text/html").await;
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(index.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(index.headers()[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        let script = get("/ui/js/main.js", "*/*").await;
        assert_eq!(script.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(get("/ui/js/nope.js", "*/*").await.status(), StatusCode::NOT_FOUND);
        let root = get("/", "text/html,application/xhtml+xml").await;
        assert_eq!(
            (root.status(), &root.headers()[header::LOCATION]),
            (StatusCode::SEE_OTHER, &HeaderValue::from_static(UI_PATH))
        );
        assert_eq!(get("/", "application/json").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/ui", "text/html").await.status(), StatusCode::SEE_OTHER);
    }

    #[test]
    fn every_module_a_script_imports_is_served() {
        for (path, _, content) in ASSETS {
            for import in content.lines().filter_map(|l| l.strip_prefix("import ")) {
                let Some(from) = import.split('\'').nth(1) else { continue };
                let target = format!("js/{}", from.trim_start_matches("./"));
                assert!(ASSETS.iter().any(|(p, _, _)| *p == target), "{path} imports {from}, not served");
            }
        }
    }
}
