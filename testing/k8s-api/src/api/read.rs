//! The reading verbs: list with selectors and continue tokens, partial object metadata, and watch.

use super::*;

pub(super) struct ContinueToken {
    rv: u64,
    start: String,
}

impl ContinueToken {
    fn encode(&self) -> String {
        let json = json!({"v": "meta.k8s.io/v1", "rv": self.rv, "start": self.start});
        base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
    }

    fn decode(token: &str) -> Result<ContinueToken, ApiError> {
        let invalid = || {
            ApiError::bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            )
        };
        let bytes = base64::engine::general_purpose::URL_SAFE.decode(token).map_err(|_| invalid())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if value["v"] != "meta.k8s.io/v1" {
            return Err(invalid());
        }
        Ok(ContinueToken {
            rv: value["rv"].as_u64().ok_or_else(invalid)?,
            start: value["start"].as_str().ok_or_else(invalid)?.to_string(),
        })
    }
}

pub(super) fn selectors(kind: &Kind, query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""), kind)
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

pub(super) fn list(shared: &Shared, target: &Target, query: &Query) -> Result<Value, ApiError> {
    let kind = target.kind;
    let (labels, fields) = selectors(kind, query)?;
    let limit: usize = match query.get("limit") {
        Some(l) => l.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?.max(0) as usize,
        None => 0,
    };
    let token = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(ContinueToken::decode(c)?),
        None => None,
    };
    let store = shared.store();
    let current = store.rv();
    let exact = query.get("resourceVersionMatch").is_some_and(|m| m == "Exact");
    let snapshot_rv = match (&token, query.get("resourceVersion")) {
        (Some(t), _) => t.rv,
        (None, Some(rv)) if exact => {
            rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?
        }
        _ => current,
    };
    let owned;
    let objects: &std::collections::BTreeMap<store::Key, Arc<Value>> = if snapshot_rv >= current {
        &store.kind(kind).objects
    } else {
        owned = store.snapshot(kind, snapshot_rv).ok_or_else(|| {
            if token.is_some() {
                ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
            } else {
                ApiError::expired(format!("too old resource version: {snapshot_rv} ({})", store.kind(kind).compacted))
            }
        })?;
        &owned
    };
    let namespace = target.namespace.as_deref();
    let start_key: Option<store::Key> = token.as_ref().map(|t| {
        let (ns, name) = t.start.split_once('/').unwrap_or(("", &t.start));
        (ns.to_string(), name.to_string())
    });
    let iter: Box<dyn Iterator<Item = (&store::Key, &Arc<Value>)>> = match (&start_key, namespace) {
        (Some(start), _) => {
            Box::new(objects.range((std::ops::Bound::Excluded(start.clone()), std::ops::Bound::Unbounded)))
        }
        (None, Some(ns)) => Box::new(objects.range((ns.to_string(), String::new())..)),
        (None, None) => Box::new(objects.iter()),
    };
    let mut items = Vec::new();
    let mut last_key = None;
    let mut more = false;
    let mut remaining = 0usize;
    for (key, object) in iter {
        if let Some(ns) = namespace {
            if key.0 != ns {
                if key.0.as_str() > ns {
                    break;
                }
                continue;
            }
        }
        if !labels.matches(&object["metadata"]["labels"]) || !fields.matches(object) {
            continue;
        }
        if limit > 0 && items.len() == limit {
            more = true;
            remaining += 1;
            continue;
        }
        items.push(strip_type_meta(object));
        last_key = Some(key.clone());
    }
    let mut metadata = json!({"resourceVersion": snapshot_rv.to_string()});
    if more {
        if let Some((ns, name)) = last_key {
            metadata["continue"] = json!(ContinueToken { rv: snapshot_rv, start: format!("{ns}/{name}") }.encode());
            if labels.is_empty() && query.get("fieldSelector").is_none_or(|f| f.is_empty()) {
                metadata["remainingItemCount"] = json!(remaining);
            }
        }
    }
    Ok(
        json!({"kind": format!("{}List", kind.kind), "apiVersion": kind.api_version(), "metadata": metadata, "items": items}),
    )
}

/// An object (or list) as PartialObjectMetadata (metadata only).
pub(super) fn partial_metadata(value: &Value) -> Value {
    match value["items"].as_array() {
        Some(items) => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": value["metadata"],
            "items": items.iter().map(|i| json!({"metadata": i["metadata"]})).collect::<Vec<_>>(),
        }),
        None => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": value["metadata"]}),
    }
}

pub(super) fn maybe_partial(object: &Value, partial: bool) -> std::borrow::Cow<'_, Value> {
    if partial {
        std::borrow::Cow::Owned(partial_metadata(object))
    } else {
        std::borrow::Cow::Borrowed(object)
    }
}

pub(super) fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

pub(super) fn watch(
    shared: Arc<Shared>,
    target: &Target,
    query: &Query,
    partial: bool,
) -> Result<Response<Body>, ApiError> {
    let kind = target.kind;
    let (labels, mut fields) = selectors(kind, query)?;
    if let Some(name) = &target.name {
        fields = FieldSelector::parse(&format!("metadata.name={name}"), kind).map_err(ApiError::bad_request)?;
    }
    let bookmarks = query.get("allowWatchBookmarks").is_some_and(|b| b == "true" || b == "1");
    let send_initial = query.get("sendInitialEvents").map(|s| s == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let rv_param = query.get("resourceVersion").cloned().unwrap_or_default();
    let namespace = target.namespace.clone();
    let matches = move |object: &Value| -> bool {
        if let Some(ns) = &namespace {
            if store::namespace_of(object) != ns {
                return false;
            }
        }
        labels.matches(&object["metadata"]["labels"]) && fields.matches(object)
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1024);
    let mut changes = shared.changes.clone();
    let initial_mode = send_initial.unwrap_or(rv_param.is_empty() || rv_param == "0");
    let start: Result<(u64, Vec<Bytes>), Bytes> = {
        let store = shared.store();
        changes.mark_unchanged();
        if initial_mode {
            let mut lines = Vec::new();
            for object in store.kind(kind).objects.values() {
                if matches(object) {
                    lines.push(event_line("ADDED", &maybe_partial(object, partial)));
                }
            }
            if send_initial == Some(true) && bookmarks {
                let bookmark = json!({"kind": kind.kind, "apiVersion": kind.api_version(),
                    "metadata": {"resourceVersion": store.rv().to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                lines.push(event_line("BOOKMARK", &bookmark));
            }
            Ok((store.rv(), lines))
        } else {
            let rv: u64 =
                rv_param.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv_param}")))?;
            let compacted = store.kind(kind).compacted;
            if rv < compacted {
                Err(event_line(
                    "ERROR",
                    &ApiError::expired(format!("too old resource version: {rv} ({compacted})")).to_status(),
                ))
            } else {
                Ok((rv, Vec::new()))
            }
        }
    };
    let task_shared = shared.clone();
    tokio::spawn(async move {
        let (mut last, lines) = match start {
            Ok(start) => start,
            Err(error) => {
                let _ = tx.send(error).await;
                return;
            }
        };
        for line in lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut bookmark_tick = tokio::time::interval(crate::BOOKMARK_INTERVAL);
        bookmark_tick.tick().await;
        loop {
            // Deliver what happened since `last`.
            let batch: Result<(u64, Vec<Bytes>), Bytes> = {
                let store = task_shared.store();
                changes.mark_unchanged();
                match store.events_after(kind, last) {
                    Err(compacted) => Err(event_line(
                        "ERROR",
                        &ApiError::expired(format!("too old resource version: {last} ({compacted})")).to_status(),
                    )),
                    Ok(events) => {
                        let mut lines = Vec::new();
                        for event in events {
                            let now_matches = event.kind != EventType::Deleted && matches(&event.object);
                            let was_matching = event.prev.as_deref().is_some_and(&matches);
                            let kind = match (event.kind, was_matching, now_matches) {
                                (EventType::Deleted, true, _) => "DELETED",
                                (EventType::Deleted, false, _) => continue,
                                (_, true, true) => "MODIFIED",
                                (_, false, true) => "ADDED",
                                (_, true, false) => "DELETED",
                                (_, false, false) => continue,
                            };
                            lines.push(event_line(kind, &maybe_partial(&event.object, partial)));
                        }
                        Ok((store.rv().max(last), lines))
                    }
                }
            };
            match batch {
                Err(error) => {
                    let _ = tx.send(error).await;
                    return;
                }
                Ok((rv, lines)) => {
                    last = rv;
                    for line in lines {
                        if tx.send(line).await.is_err() {
                            return;
                        }
                    }
                }
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = bookmark_tick.tick(), if bookmarks => {
                    let bookmark = json!({"kind": kind.kind, "apiVersion": kind.api_version(),
                        "metadata": {"resourceVersion": last.to_string()}});
                    if tx.send(event_line("BOOKMARK", &bookmark)).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok::<_, crate::BoxError>(hyper::body::Frame::data(bytes)), rx))
    });
    let body = http_body_util::BodyExt::boxed_unsync(http_body_util::StreamBody::new(stream));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .expect("valid response"))
}
