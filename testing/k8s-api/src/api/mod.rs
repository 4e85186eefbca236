//! The REST API: routing, discovery, and the verbs get, list, watch,
//! create, update, patch, delete and deletecollection on every kind, plus
//! the `status` and `scale` subresources, one module per concern.

mod admission;
mod delete;
mod handling;
mod read;
mod routing;
mod write;

pub(crate) use admission::*;
pub(crate) use delete::*;
pub(crate) use handling::*;
use read::*;
use routing::*;
pub(crate) use write::*;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::{json, Map, Value};

use crate::kinds::{self, Kind, KINDS};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{self, ApiError, Cause};
use crate::store::{self, is_deleting, name_of, now, uid_of, EventType, Store};
use crate::validate;
use crate::{body_from, Body, Shared};

/// The largest request body read (the API server's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// The query parameters of a request.
pub(crate) type Query = HashMap<String, String>;

/// A JSON response.
pub(crate) fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(body_from(Bytes::from(bytes)))
        .expect("valid response")
}

/// A Status error response.
pub(crate) fn error_response(error: &ApiError) -> Response<Body> {
    json_response(error.code, &error.to_status())
}

/// What a request addresses.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) kind: &'static Kind,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) sub: Option<String>,
    /// For `proxy`: the path after `/proxy` (starts with `/` or is empty).
    pub(crate) rest: String,
    /// A `/watch/` path prefix.
    pub(crate) legacy_watch: bool,
}
