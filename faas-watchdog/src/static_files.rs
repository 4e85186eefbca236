//! Static mode: files served from a directory.

use std::path::{Path, PathBuf};

use faas_core::Body;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tokio_util::io::ReaderStream;

/// Serves the files below `root`.
pub(crate) struct StaticFiles {
    root: PathBuf,
}

impl StaticFiles {
    pub(crate) fn new(root: PathBuf) -> StaticFiles {
        StaticFiles { root }
    }

    /// Why the directory cannot be served, if it cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        match std::fs::metadata(&self.root) {
            Ok(meta) if meta.is_dir() => None,
            Ok(_) => Some(format!("static_path {:?} is not a directory", self.root)),
            Err(e) => Some(format!("static_path {:?}: {e}", self.root)),
        }
    }

    /// Answers GET and HEAD with the file at the request's path.
    pub(crate) async fn serve(&self, request: Request<Body>) -> Response<Body> {
        let head = request.method() == Method::HEAD;
        if request.method() != Method::GET && !head {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let Some(path) = self.locate(request.uri().path()).await else {
            return text(StatusCode::NOT_FOUND, "not found");
        };
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(_) => return text(StatusCode::NOT_FOUND, "not found"),
        };
        let len = match file.metadata().await {
            Ok(meta) => meta.len(),
            Err(_) => return text(StatusCode::NOT_FOUND, "not found"),
        };
        let mime = mime_guess::from_path(&path).first_or_octet_stream();
        let body = if head { Body::empty() } else { Body::from_stream(ReaderStream::with_capacity(file, 64 * 1024)) };
        let mut response = Response::new(body);
        if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(len));
        response
    }

    /// The file a URL path names: inside the root (after resolving
    /// symlinks), `index.html` for directories; `None` if there is none.
    async fn locate(&self, url_path: &str) -> Option<PathBuf> {
        let decoded = percent_decode(url_path)?;
        let mut relative = PathBuf::new();
        for segment in decoded.split('/') {
            match segment {
                "" | "." => {}
                ".." => return None,
                s if s.contains('\0') => return None,
                s => relative.push(s),
            }
        }
        let root = tokio::fs::canonicalize(&self.root).await.ok()?;
        let mut path = tokio::fs::canonicalize(root.join(&relative)).await.ok()?;
        if !path.starts_with(&root) {
            return None;
        }
        if tokio::fs::metadata(&path).await.ok()?.is_dir() {
            path = tokio::fs::canonicalize(path.join("index.html")).await.ok()?;
            if !path.starts_with(&root) {
                return None;
            }
        }
        is_file(&path).await.then_some(path)
    }
}

async fn is_file(path: &Path) -> bool {
    tokio::fs::metadata(path).await.map(|m| m.is_file()).unwrap_or(false)
}

fn text(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Decodes `%XX` escapes; `None` for malformed escapes or non-UTF-8 results.
fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/%2e%2e/x").as_deref(), Some("/../x"));
        assert_eq!(percent_decode("/bad%2"), None);
        assert_eq!(percent_decode("/bad%zz"), None);
    }
}
