//! The portal in a real browser (headless chromium through WebDriver)
//! against the real gateway binary and its local provider.

mod browser;
mod common;

use std::time::Duration;

use browser::Browser;
use common::{script, Gateway};
use http::StatusCode;
use sha2::Digest;

/// A function echoing its body after "hello ", logging what it got on stderr.
const ECHO: &str = "body=$(cat)\necho \"got: $body\" >&2\nprintf 'hello %s' \"$body\"\n";
/// Markup a function answers and logs.
const MARKUP: &str = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_deploys_calls_scales_charts_follows_logs_and_deletes() {
    let Some(browser) = Browser::start().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let echo = script(dir.path(), "echo.sh", ECHO);
    let html = script(dir.path(), "markup.html", MARKUP);
    let markup = script(dir.path(), "markup.sh", &format!("cat >/dev/null\ncat {0} >&2\ncat {0}\n", html.display()));
    let gateway = Gateway::start(&dir.path().join("state"), &[]).await;

    // A browser asking for / lands on the portal.
    browser.open(&gateway.uri("/")).await;
    browser.wait_for("the portal", "location.pathname === '/ui/' && document.querySelector('#list-status')").await;
    browser.wait_for("an empty table", "document.querySelector('#list-status').textContent.startsWith('0 of 0')").await;

    // The deploy form: a 400 shows beside the field it names, then a good deploy.
    browser.click("#nav-deploy").await;
    browser.wait_for("the deploy form", "document.querySelector('#deploy-form')").await;
    browser.fill("#deploy-service", "ui-echo").await;
    browser.fill("#deploy-process", &format!("sh {}", echo.display())).await;
    browser.fill("#deploy-labels", "com.openfaas.scale.max=0").await;
    browser.click("#deploy-submit").await;
    let error = browser.wait_for("the 400 beside labels", "document.querySelector('#error-labels').textContent").await;
    assert!(error.as_str().unwrap().contains("labels.com.openfaas.scale.max"), "{error}");
    assert_eq!(browser.text("#deploy-error").await, "", "the message is beside the field, not at the top");
    browser.fill("#deploy-labels", "com.openfaas.scale.min=1").await;
    browser.click("#deploy-submit").await;
    browser.wait_for("the function page", "location.hash === '#/fn/openfaas-fn/ui-echo'").await;
    browser.wait_for("one ready replica", "document.querySelector('#fn-replicas').textContent === '1/1 ready'").await;
    let url = browser.text("#url-async").await;
    assert_eq!(url, gateway.uri("/async-function/ui-echo.openfaas-fn"));
    browser.wait_for("the charts", "document.querySelector('#chart-calls svg')").await;
    let before = browser.js("return document.querySelector('#chart-calls svg').dataset.nonzero").await;
    assert_eq!(before, "0", "no call yet");
    browser.wait_for("the log stream", "document.querySelector('#logs-state').textContent === 'following'").await;

    // The invoke panel calls it and shows the answer; the log gets a line.
    for i in 1..=3 {
        browser.fill("#invoke-body", &format!("marker-{i}")).await;
        browser.click("#invoke-send").await;
        let expected = format!("hello marker-{i}");
        browser
            .wait_for("the answer", &format!("document.querySelector('#invoke-answer')?.textContent === {expected:?}"))
            .await;
        assert!(browser.text("#invoke-status").await.starts_with("200"), "{}", browser.text("#invoke-status").await);
        assert!(browser.text("#invoke-time").await.ends_with(" ms"));
        let log = format!("got: marker-{i}");
        browser
            .wait_for(
                "the call's log line",
                &format!("[...document.querySelectorAll('#logs .logline')].some(l => l.textContent.endsWith({log:?}))"),
            )
            .await;
    }
    // The next 5 s pass puts the calls on the chart.
    browser
        .wait_for("calls on the chart", "Number(document.querySelector('#chart-calls svg').dataset.nonzero) >= 1")
        .await;

    // Scale to 2 and see 2 ready.
    browser.fill("#scale-replicas", "2").await;
    browser.click("#scale-apply").await;
    browser.wait_for("two ready replicas", "document.querySelector('#fn-replicas').textContent === '2/2 ready'").await;
    browser
        .wait_for("2 desired on the chart", "document.querySelector('#chart-replicas svg').dataset.last === '2'")
        .await;
    browser.js("window.scrollTo(0, 0); return true").await;
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-function.png");
    browser.screenshot(&shot).await;
    if let Some(copy) = std::env::var_os("FAAS_UI_SCREENSHOT") {
        std::fs::copy(&shot, copy).unwrap();
    }

    // The table shows it with its numbers.
    browser.open(&gateway.uri("/ui/#/")).await;
    let row = "document.querySelector('tr[data-fn=\"ui-echo\"]')";
    browser.wait_for("the row", &format!("{row}?.querySelector('.replicas').textContent === '2/2'")).await;
    browser.wait_for("its calls", &format!("Number({row}.querySelector('.calls').textContent) === 3")).await;
    browser.fill("#filter", "nothing-like-it").await;
    browser.wait_for("the filter", "document.querySelector('#list-status').textContent.startsWith('0 of 1')").await;

    // Markup in an answer and in logs is shown as text, never run.
    gateway
        .deploy(serde_json::json!({"service": "ui-markup", "image": "local",
            "envProcess": format!("sh {}", markup.display()), "envVars": {"content_type": "text/html"}}))
        .await;
    browser.open(&gateway.uri("/ui/#/fn/openfaas-fn/ui-markup")).await;
    browser.wait_for("the log stream", "document.querySelector('#logs-state').textContent === 'following'").await;
    browser.click("#invoke-send").await;
    let answer = browser.wait_for("the markup answer", "document.querySelector('#invoke-answer')?.textContent").await;
    assert!(answer.as_str().unwrap().starts_with("<script>document.title"), "{answer}");
    browser
        .wait_for(
            "the markup log line",
            "[...document.querySelectorAll('#logs .logline')].some(l => l.textContent.includes('<img src=x'))",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(browser.js("return document.title").await, "faas-rs portal", "no script ran");
    let elements = browser.js("return document.querySelectorAll('#main script, #main img').length").await;
    assert_eq!(elements, 0, "the markup stayed text");

    // A file as the body: its bytes reach the function unchanged, and a
    // binary answer is offered as a download of the same bytes.
    let upload: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, &upload).unwrap();
    gateway
        .deploy(serde_json::json!({"service": "ui-digest", "image": "local", "envProcess": "sha512sum",
            "envVars": {"content_type": "text/plain"}}))
        .await;
    browser.open(&gateway.uri("/ui/#/fn/openfaas-fn/ui-digest")).await;
    browser.wait_for("the invoke panel", "document.querySelector('#invoke-file')").await;
    browser.attach("#invoke-file", &file).await;
    browser.click("#invoke-send").await;
    let digest = browser.wait_for("the digest", "document.querySelector('#invoke-answer')?.textContent").await;
    let expected = format!("{:x}  -\n", sha2::Sha512::digest(&upload));
    assert_eq!(digest.as_str().unwrap(), expected, "the function read the file's bytes");
    gateway
        .deploy(serde_json::json!({"service": "ui-bytes", "image": "local", "envProcess": "cat",
            "envVars": {"content_type": "application/octet-stream"}}))
        .await;
    browser.open(&gateway.uri("/ui/#/fn/openfaas-fn/ui-bytes")).await;
    browser.wait_for("the invoke panel", "document.querySelector('#invoke-file')").await;
    browser.attach("#invoke-file", &file).await;
    browser.click("#invoke-send").await;
    let link = browser.wait_for("the download link", "document.querySelector('#invoke-download')?.textContent").await;
    assert!(link.as_str().unwrap().contains("100000 bytes, application/octet-stream"), "{link}");
    browser.click("#invoke-download").await;
    let downloaded = browser.downloaded("ui-bytes-answer.bin").await;
    assert!(downloaded == upload, "the download holds the answer's {} bytes, not {}", upload.len(), downloaded.len());

    // Delete, with confirmation.
    browser.open(&gateway.uri("/ui/#/fn/openfaas-fn/ui-echo")).await;
    browser.wait_for("the page", "document.querySelector('#delete')").await;
    browser.click("#delete").await;
    browser.click("#delete-confirm").await;
    browser.wait_for("back to the list", "location.hash === '#/'").await;
    let (status, body) = gateway.get("/system/function/ui-echo").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_basic_auth_the_portal_asks_for_credentials_shows_secret_names_only_and_replays_dead_letters() {
    let Some(browser) = Browser::start().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("auth");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("basic-auth-user"), "admin").unwrap();
    std::fs::write(secrets.join("basic-auth-password"), "pa55word").unwrap();
    let mount = secrets.display().to_string();
    let gateway = Gateway::start(
        &dir.path().join("state"),
        &["--basic-auth", "--secret-mount-path", &mount, "--async-retry-base", "50ms", "--async-retry-cap", "200ms"],
    )
    .await;
    let (status, _) = gateway.get("/system/metrics/history").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the history is behind basic auth like /system");

    browser.open(&gateway.uri("/ui/")).await;
    browser.wait_for("the sign-in form", "!document.querySelector('#login').hidden").await;
    browser.fill("#login-user", "admin").await;
    browser.fill("#login-password", "pa55word").await;
    browser.click("#login-submit").await;
    browser.wait_for("the table", "document.querySelector('#list-status')?.textContent.startsWith('0 of 0')").await;

    let value = "s3cr3t-value-42";
    browser.click("#nav-secrets").await;
    browser.wait_for("the secrets page", "document.querySelector('#secret-name')").await;
    browser.fill("#secret-name", "db-pass").await;
    browser.fill("#secret-value", value).await;
    browser.click("#secret-save").await;
    browser.wait_for("the secret listed", "document.querySelector('tr[data-secret=\"db-pass\"]')").await;
    assert_eq!(browser.text("#secrets-message").await, "created db-pass");
    browser.fill("#secret-name", "db-pass").await;
    browser.fill("#secret-value", "another-value").await;
    browser.click("#secret-save").await;
    browser
        .wait_for("the update", "document.querySelector('#secrets-message').textContent === 'updated db-pass'")
        .await;
    let page = browser.js("return document.documentElement.outerHTML").await;
    assert!(!page.as_str().unwrap().contains(value), "no secret value in the page");
    browser.click(".secret-delete").await;
    browser.click(".secret-delete").await;
    browser.wait_for("the secret gone", "!document.querySelector('tr[data-secret=\"db-pass\"]') && document.querySelector('#secrets-message').textContent === 'deleted db-pass'").await;

    browser.click("#nav-dead-letters").await;
    browser
        .wait_for(
            "the dead letters page",
            "document.querySelector('#dead-letters-message').textContent === 'No dead letters.'",
        )
        .await;

    // A call whose callback cannot be delivered becomes a dead letter: listed, and replayed from the page.
    let auth = common::basic("admin", "pa55word");
    let deploy = serde_json::json!({"service": "ui-async", "image": "local", "envProcess": "cat"}).to_string();
    let request = http::Request::post("/system/functions").header("authorization", &auth).body(deploy.into()).unwrap();
    assert_eq!(gateway.send(request).await.0, StatusCode::ACCEPTED);
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let call = http::Request::post("/async-function/ui-async")
        .header("x-callback-url", format!("http://{refused}/gone"))
        .body("async body".into())
        .unwrap();
    let (status, headers, _) = gateway.send(call).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = headers["x-call-id"].to_str().unwrap().to_owned();
    let row = format!("document.querySelector('tr[data-id=\"{id}\"]')");
    // The page refreshes itself every 5 s.
    browser.wait_for("the dead letter listed", &row).await;
    let shown = browser.js(&format!("return {row}.textContent")).await;
    assert!(shown.as_str().unwrap().contains("callback") && shown.as_str().unwrap().contains("ui-async"), "{shown}");
    browser.click(&format!("tr[data-id=\"{id}\"] .replay")).await;
    let replayed = format!("document.querySelector('#dead-letters-message').textContent === 'queued {id} again'");
    browser.wait_for("the replay", &replayed).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gateway_or_a_503_shows_a_banner() {
    let Some(browser) = Browser::start().await else { return };
    // A gateway whose provider answers 503.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = faas_gateway::ui::router().route(
        "/system/functions",
        axum::routing::get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "the provider is down") }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    browser.open(&format!("http://{addr}/ui/")).await;
    let banner = browser
        .wait_for(
            "the 503 banner",
            "!document.querySelector('#banner').hidden && document.querySelector('#banner').textContent",
        )
        .await;
    assert!(
        banner.as_str().unwrap().contains("503") && banner.as_str().unwrap().contains("the provider is down"),
        "{banner}"
    );
    server.abort();

    let dir = tempfile::tempdir().unwrap();
    let mut gateway = Gateway::start(&dir.path().join("state"), &[]).await;
    browser.open(&gateway.uri("/ui/")).await;
    browser.wait_for("the table", "document.querySelector('#list-status')?.textContent.startsWith('0 of 0')").await;
    assert_eq!(browser.js("return document.querySelector('#banner').hidden").await, true);
    gateway.terminate();
    gateway.wait_exit().await;
    let banner = browser
        .wait_for(
            "the unreachable banner",
            "!document.querySelector('#banner').hidden && document.querySelector('#banner').textContent",
        )
        .await;
    assert!(banner.as_str().unwrap().starts_with("Cannot reach the gateway"), "{banner}");
    browser.close().await;
}
