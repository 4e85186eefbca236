//! Runs the test Cattle server until Ctrl-C, for trying a gateway built
//! with `--features cattle` by hand:
//!
//! ```text
//! cargo run -p cattle-test-server
//! ```
//!
//! It prints the `CATTLE_*` variables to give the gateway. The keys come
//! from `CATTLE_ACCESS_KEY` and `CATTLE_SECRET_KEY` if set.

use cattle_test_server::{Options, TestServer};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut options = Options::default();
    if let Ok(key) = std::env::var("CATTLE_ACCESS_KEY") {
        options.access_key = key;
    }
    if let Ok(key) = std::env::var("CATTLE_SECRET_KEY") {
        options.secret_key = key;
    }
    let server = TestServer::start(options).await?;
    println!("CATTLE_URL={}", server.url());
    println!("CATTLE_ACCESS_KEY={}", server.access_key());
    println!("CATTLE_INVOKE=public-endpoints");
    println!("(the secret key is the one in CATTLE_SECRET_KEY, or the default `test-secret-key`)");
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
