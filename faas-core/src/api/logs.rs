//! `GET /system/logs`: newline-delimited JSON, one message a line.

use axum::extract::RawQuery;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use http::{header, HeaderValue};

use super::error_response::respond;
use super::request;
use super::State;
use crate::body::Body;
use crate::error::{Error, Result};
use crate::types::LogRequest;
use crate::validate;

/// The query as clients send it: everything a string, parsed with errors
/// that name the parameter.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct LogQuery {
    name: Option<String>,
    namespace: Option<String>,
    instance: Option<String>,
    since: Option<String>,
    tail: Option<String>,
    follow: Option<String>,
}

fn parse(state: &State, query: Option<&str>) -> Result<LogRequest> {
    let q: LogQuery = request::query(query)?;
    let name =
        q.name.filter(|n| !n.is_empty()).ok_or_else(|| Error::invalid("name", "the function's name is required"))?;
    validate::function_name("name", &name)?;
    let namespace = request::namespace(&*state.provider, "", q.namespace.as_deref())?;
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|e| Error::invalid("since", format!("{s:?} is not an RFC 3339 time: {e}")))?
                .with_timezone(&Utc),
        ),
    };
    let tail = match q.tail.as_deref().filter(|s| !s.is_empty()) {
        None => 0,
        Some(t) => t.parse::<i64>().map_err(|_| Error::invalid("tail", format!("{t:?} is not a whole number")))?,
    };
    let follow = match q.follow.as_deref() {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => return Err(Error::invalid("follow", format!("{other:?} is not true or false"))),
    };
    Ok(LogRequest { name, namespace, instance: q.instance.unwrap_or_default(), since, tail, follow })
}

/// `GET /system/logs`
pub(super) async fn logs(state: State, RawQuery(query): RawQuery) -> Response {
    respond(
        async {
            let request = parse(&state, query.as_deref())?;
            let stream = state.provider.logs(request).await?;
            let lines = stream.map(|message| match message {
                Ok(message) => {
                    let mut line = serde_json::to_vec(&message).map_err(|e| Box::new(e) as crate::BoxError)?;
                    line.push(b'\n');
                    Ok(Bytes::from(line))
                }
                Err(err) => {
                    tracing::warn!("log stream ended by an error: {}", err.message());
                    Err(Box::new(err) as crate::BoxError)
                }
            });
            let mut response = axum::body::Body::new(Body::from_stream(lines)).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
            Ok(response)
        }
        .await,
    )
}
