//! Static mode: files from a directory, nothing outside it.

mod common;

use common::*;
use faas_core::Body;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_files_and_nothing_outside_the_directory() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let root = tempfile::tempdir().unwrap();
    let public = root.path().join("public");
    std::fs::create_dir_all(public.join("sub")).unwrap();
    std::fs::create_dir_all(public.join("empty")).unwrap();
    std::fs::write(public.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(public.join("style.css"), "body{}").unwrap();
    std::fs::write(public.join("sub/index.html"), "<p>sub</p>").unwrap();
    std::fs::write(public.join("a b.txt"), "spaced").unwrap();
    std::fs::write(root.path().join("sibling.txt"), "sibling").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), public.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), public.join("linkdir")).unwrap();
    std::os::unix::fs::symlink(public.join("style.css"), public.join("inside.css")).unwrap();

    let path = public.to_str().unwrap();
    let (wd, _) = start(&[("mode", "static"), ("static_path", path)], 1).await;
    assert_eq!(wd.ready_instances(), 1);

    let get = |p: &str| request("GET", p, Body::empty());
    let (status, headers, body) = call(&wd, get("/")).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "<h1>home</h1>"));
    assert_eq!(headers["content-type"], "text/html");
    let (status, headers, body) = call(&wd, get("/style.css")).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "body{}"));
    assert_eq!(headers["content-type"], "text/css");
    assert_eq!(headers["content-length"], "6");
    assert_eq!(call(&wd, get("/sub")).await.unwrap().2, "<p>sub</p>");
    assert_eq!(call(&wd, get("/sub/")).await.unwrap().2, "<p>sub</p>");
    assert_eq!(call(&wd, get("/a%20b.txt")).await.unwrap().2, "spaced");
    assert_eq!(call(&wd, get("/inside.css")).await.unwrap().2, "body{}");

    let (status, headers, body) = call(&wd, request("HEAD", "/style.css", Body::empty())).await.unwrap();
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(headers["content-length"], "6");

    for missing in [
        "/nope.txt",
        "/empty",
        "/../sibling.txt",
        "/%2e%2e/sibling.txt",
        "/sub/../../sibling.txt",
        "/link.txt",
        "/linkdir/secret.txt",
        "/%zz",
    ] {
        let (status, _, body) = call(&wd, get(missing)).await.unwrap();
        assert_eq!(status, 404, "{missing}: {body}");
        assert!(!body.contains("secret") && !body.contains("sibling"), "{missing}: {body}");
    }
    let (status, headers, _) = call(&wd, request("POST", "/style.css", "x")).await.unwrap();
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "GET, HEAD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_directory_is_not_ready() {
    let (wd, _) = start(&[("mode", "static"), ("static_path", "/no/such/dir/here")], 1).await;
    assert_eq!(wd.ready_instances(), 0);
    assert!(wd.last_error().unwrap().contains("/no/such/dir/here"));
    let response = wd.handle(request("GET", "/_/health", Body::empty())).await;
    assert_eq!(response.status(), 503);
    let response = wd.handle(request("GET", "/x", Body::empty())).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-faas-error"], "platform");
}
