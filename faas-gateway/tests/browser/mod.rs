//! A real browser for the portal's tests: Debian's headless chromium driven
//! through chromedriver (WebDriver) on a free loopback port. Without
//! chromium the tests skip with a message, except on CI (`CI` set), where
//! they fail saying what to install.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// The longest a page may take to show what a test waits for.
pub const WAIT: Duration = Duration::from_secs(40);

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Chromium and its driver, if installed.
fn installed() -> Option<(PathBuf, PathBuf)> {
    let chromium = find(&["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"])?;
    let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])?;
    Some((chromium, driver))
}

/// chromedriver and one headless chromium session; both end on drop.
pub struct Browser {
    driver: Child,
    /// The WebDriver session.
    pub client: Client,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts a session, or `None` (after saying why) when chromium is not
    /// installed and this is not CI.
    pub async fn start() -> Option<Browser> {
        let Some((chromium, driver_path)) = installed() else {
            let message =
                "chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)";
            if std::env::var_os("CI").is_some() {
                panic!("CI runs the portal's browser tests: {message}");
            }
            eprintln!("skipping the browser test: {message}");
            return None;
        };
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_path.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {addr} within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1900", "--no-first-run", "--disable-extensions",
                         format!("--user-data-dir={}", profile.path().display())],
                "prefs": {"download.default_directory": profile.path().join("downloads"),
                          "download.prompt_for_download": false},
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .unwrap_or_else(|e| panic!("cannot open a chromium session through chromedriver: {e}"));
        Some(Browser { driver, client, profile })
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Runs `script` (a function body: `return ...`) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `expression` is truthy in the page; returns its value.
    pub async fn wait_for(&self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        let script = format!("try {{ return ({expression}); }} catch (e) {{ return null; }}");
        loop {
            let value = self.js(&script).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let body = self.js("return document.body.innerText").await;
                panic!("{what}: `{expression}` still false after {WAIT:?}; the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The text of the first element matching `css` ("" if none).
    pub async fn text(&self, css: &str) -> String {
        let script = format!("const e = document.querySelector({css:?}); return e ? e.textContent : '';");
        self.js(&script).await.as_str().unwrap_or_default().to_owned()
    }

    /// Types `text` into the field matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no field {css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
    }

    /// Waits until the browser has downloaded `name` (a click on a
    /// download link saves it without asking); its bytes.
    ///
    /// Chromium reserves `name` with an empty file when the download
    /// starts, writes to `name.crdownload` (or `Unconfirmed *.crdownload`)
    /// and renames that over `name` when complete; so the download is done
    /// once `name` is not empty and no `.crdownload` file is left. (An
    /// empty download therefore never counts as done here.)
    pub async fn downloaded(&self, name: &str) -> Vec<u8> {
        let dir = self.profile.path().join("downloads");
        let path = dir.join(name);
        let deadline = Instant::now() + WAIT;
        loop {
            let in_progress = std::fs::read_dir(&dir)
                .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".crdownload")))
                .unwrap_or(false);
            if !in_progress {
                if let Ok(bytes) = std::fs::read(&path) {
                    if !bytes.is_empty() {
                        return bytes;
                    }
                }
            }
            assert!(Instant::now() < deadline, "{name} was not downloaded within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Chooses the file at `path` in the file input matching `css` (as a
    /// user picking it in the file dialog).
    pub async fn attach(&self, css: &str, path: &Path) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no file input {css}: {e}"));
        let path = path.to_str().expect("a UTF-8 path");
        field.send_keys(path).await.unwrap_or_else(|e| panic!("cannot choose {path} in {css}: {e}"));
    }

    /// Picks the option of value `value` in the select matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no select {css}: {e}"));
        field.select_by_value(value).await.unwrap_or_else(|e| panic!("cannot pick {value} in {css}: {e}"));
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no element {css}: {e}"));
        element.click().await.unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// A PNG of the window, written to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(path, png).unwrap();
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
