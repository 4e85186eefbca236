//! A status's JSON written straight into a buffer: the text of its derived
//! `Serialize` through `serde_json` (the tests compare them byte for byte),
//! at a fraction of the cost for a listing of 10,000 functions.
//!
//! Through serde every byte of every string, the field names included, is
//! looked up in serde_json's escape table: with the structure around it
//! that was ~5,700 instructions per status. Here the field names are
//! constants, a string that needs no escaping (no `"`, `\` or control
//! character: names, images, labels in practice) is copied whole after a
//! check the compiler vectorises, and everything else (strings that need
//! escaping, numbers that are not whole, resources, usage) is left to
//! serde_json, so there is one JSON encoder and this is its fast path.

use serde::Serialize;

use super::{go_float, timestamp, FunctionStatus};

/// The JSON a status's derived `Serialize` writes, appended to `out`.
pub(crate) fn write(status: &FunctionStatus, out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"name\":");
    string(out, &status.name)?;
    out.extend_from_slice(b",\"image\":");
    string(out, &status.image)?;
    if !status.namespace.is_empty() {
        out.extend_from_slice(b",\"namespace\":");
        string(out, &status.namespace)?;
    }
    if !status.env_process.is_empty() {
        out.extend_from_slice(b",\"envProcess\":");
        string(out, &status.env_process)?;
    }
    out.extend_from_slice(b",\"envVars\":");
    map(out, status.env_vars.iter())?;
    out.extend_from_slice(b",\"constraints\":");
    list(out, &status.constraints)?;
    out.extend_from_slice(b",\"secrets\":");
    list(out, &status.secrets)?;
    out.extend_from_slice(b",\"labels\":");
    map(out, status.labels.iter().flatten())?;
    out.extend_from_slice(b",\"annotations\":");
    map(out, status.annotations.iter().flatten())?;
    if let Some(limits) = &status.limits {
        out.extend_from_slice(b",\"limits\":");
        serde_json::to_writer(&mut *out, limits)?;
    }
    if let Some(requests) = &status.requests {
        out.extend_from_slice(b",\"requests\":");
        serde_json::to_writer(&mut *out, requests)?;
    }
    if status.read_only_root_filesystem {
        out.extend_from_slice(b",\"readOnlyRootFilesystem\":true");
    }
    if status.invocation_count != 0.0 {
        out.extend_from_slice(b",\"invocationCount\":");
        go_float(&status.invocation_count, &mut serde_json::Serializer::new(&mut *out))?;
    }
    if status.replicas != 0 {
        out.extend_from_slice(b",\"replicas\":");
        whole(out, status.replicas)?;
    }
    if status.available_replicas != 0 {
        out.extend_from_slice(b",\"availableReplicas\":");
        whole(out, status.available_replicas)?;
    }
    if let Some(created_at) = &status.created_at {
        out.extend_from_slice(b",\"createdAt\":");
        timestamp::write_json(created_at, out)?;
    }
    if let Some(usage) = &status.usage {
        out.extend_from_slice(b",\"usage\":");
        serde_json::to_writer(&mut *out, usage)?;
    }
    out.push(b'}');
    Ok(())
}

/// A JSON string: copied between quotes when nothing in it needs escaping,
/// else written by serde_json.
fn string(out: &mut Vec<u8>, value: &str) -> serde_json::Result<()> {
    let bytes = value.as_bytes();
    if !plain(bytes) {
        return value.serialize(&mut serde_json::Serializer::new(out));
    }
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    copy(out, bytes);
    out.push(b'"');
    Ok(())
}

/// Whether no byte of `bytes` is one JSON escapes (`"`, `\`, below 0x20),
/// looked at eight bytes at a time; a string shorter than a word is read
/// as two overlapping halves, one longer with a part word at the end reads
/// its last eight bytes again.
fn plain(bytes: &[u8]) -> bool {
    let len = bytes.len();
    match len {
        0..=3 => !bytes.iter().any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\'),
        4..=7 => escapes(u64::from(half(&bytes[..4])) | u64::from(half(&bytes[len - 4..])) << 32) == 0,
        _ => {
            let mut words = bytes.chunks_exact(8);
            let mut found = 0;
            for chunk in &mut words {
                found |= escapes(word(chunk));
            }
            if !words.remainder().is_empty() {
                found |= escapes(word(&bytes[len - 8..]));
            }
            found == 0
        }
    }
}

/// Nonzero when a byte of `word` is below 0x20, `"` or `\` (the classic
/// SWAR tests for a byte below n and for a zero byte: exact as a whole,
/// whatever they say about single bytes).
fn escapes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    below(word, 0x20) | below(word ^ (ONES * u64::from(b'"')), 1) | below(word ^ (ONES * u64::from(b'\\')), 1)
}

/// The eight bytes of `chunk` (always eight long) as a word; a shorter
/// chunk reads as zeros, which need escaping, so the string would only go
/// the slow way.
fn word(chunk: &[u8]) -> u64 {
    u64::from_le_bytes(chunk[..8].try_into().unwrap_or([0; 8]))
}

/// The four bytes of `chunk` (always four long) as a half word.
fn half(chunk: &[u8]) -> u32 {
    u32::from_le_bytes(chunk[..4].try_into().unwrap_or([0; 4]))
}

/// Appends `bytes` with copies of fixed sizes (a few moves, where a
/// `memcpy` call for each short string cost more than the copying): the
/// first and the last n bytes, overlapping, for n of 4, 8 or 16.
fn copy(out: &mut Vec<u8>, bytes: &[u8]) {
    fn overlapping<const N: usize>(out: &mut Vec<u8>, bytes: &[u8]) {
        let len = bytes.len();
        let start = out.len();
        out.extend_from_slice(&bytes[..N]);
        out.truncate(start + len - N);
        out.extend_from_slice(&bytes[len - N..]);
    }
    match bytes.len() {
        0..=3 => {
            for &byte in bytes {
                out.push(byte);
            }
        }
        4..=7 => overlapping::<4>(out, bytes),
        8..=15 => overlapping::<8>(out, bytes),
        16..=31 => overlapping::<16>(out, bytes),
        _ => out.extend_from_slice(bytes),
    }
}

/// A JSON object of string pairs, in the map's order.
fn map<'a>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'a String, &'a String)>) -> serde_json::Result<()> {
    out.push(b'{');
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, key)?;
        out.push(b':');
        string(out, value)?;
    }
    out.push(b'}');
    Ok(())
}

/// A JSON array of strings.
fn list(out: &mut Vec<u8>, items: &[String]) -> serde_json::Result<()> {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, item)?;
    }
    out.push(b']');
    Ok(())
}

/// A whole number, as serde_json writes it.
fn whole(out: &mut Vec<u8>, value: u64) -> serde_json::Result<()> {
    value.serialize(&mut serde_json::Serializer::new(out))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::types::{FunctionResources, FunctionUsage};

    fn ours(status: &FunctionStatus) -> String {
        let mut out = Vec::new();
        write(status, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn pairs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Strings that need each kind of escape, that need none, and lengths
    /// either side of the 16-byte chunks.
    const STRINGS: &[&str] = &[
        "",
        "fn-00001",
        "a\"quote",
        "back\\slash",
        "tab\there",
        "nl\ncr\rff\u{c}bs\u{8}",
        "\u{1}\u{1f}\u{7f}",
        "é ü 日本 🦀 \u{2028}",
        "0123456789abcdef",
        "0123456789abcde\"",
        "0123456789abcdef0123456789abcdef\u{0}",
        "/usr/local/bin/a-rather-long-function-process --with flags=1",
    ];

    fn statuses() -> Vec<FunctionStatus> {
        let created = Utc.with_ymd_and_hms(2026, 12, 7, 4, 5, 6).unwrap();
        let mut all = vec![
            FunctionStatus::default(),
            FunctionStatus {
                name: "echo".into(),
                image: "faas-bench".into(),
                namespace: "openfaas-fn".into(),
                env_process: "/bin/echo".into(),
                env_vars: pairs(&[("mode", "http")]),
                labels: Some(pairs(&[("com.openfaas.scale.min", "0"), ("faas_function", "echo")])),
                annotations: Some(BTreeMap::new()),
                created_at: Some(created + chrono::Duration::nanoseconds(123_456_789)),
                ..FunctionStatus::default()
            },
            FunctionStatus {
                name: "all".into(),
                image: "img:1".into(),
                namespace: "team".into(),
                env_process: "cat".into(),
                env_vars: pairs(&[("a", "1"), ("b", "2")]),
                constraints: vec!["node.platform.os == linux".into(), "x".into()],
                secrets: vec!["s1".into(), "s2".into()],
                labels: Some(pairs(&[("l", "v")])),
                annotations: Some(pairs(&[("topic", "orders"), ("faas-rs/last-error", "exit 1: \"boom\"\n")])),
                limits: Some(FunctionResources { memory: "128Mi".into(), cpu: "500m".into() }),
                requests: Some(FunctionResources { memory: String::new(), cpu: "0.5".into() }),
                read_only_root_filesystem: true,
                invocation_count: 1337.0,
                replicas: 3,
                available_replicas: 2,
                created_at: Some(created),
                usage: Some(FunctionUsage { cpu: 0.25, total_memory_bytes: 1_048_576.0 }),
            },
            FunctionStatus {
                invocation_count: 0.5,
                usage: Some(FunctionUsage::default()),
                ..FunctionStatus::default()
            },
            FunctionStatus { invocation_count: 1e300, replicas: u64::MAX, ..FunctionStatus::default() },
            FunctionStatus {
                labels: None,
                annotations: None,
                limits: Some(FunctionResources::default()),
                ..FunctionStatus::default()
            },
            FunctionStatus {
                created_at: Some(Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap()),
                ..FunctionStatus::default()
            },
        ];
        for (i, s) in STRINGS.iter().enumerate() {
            let other = STRINGS[(i + 1) % STRINGS.len()];
            all.push(FunctionStatus {
                name: s.to_string(),
                image: other.to_string(),
                namespace: s.to_string(),
                env_process: other.to_string(),
                env_vars: pairs(&[(s, other), ("k", s)]),
                constraints: vec![s.to_string(), other.to_string()],
                secrets: vec![other.to_string()],
                labels: Some(pairs(&[(other, s)])),
                annotations: Some(pairs(&[(s, s)])),
                ..FunctionStatus::default()
            });
        }
        all
    }

    #[test]
    fn the_text_is_the_derived_serializations_byte_for_byte() {
        for status in statuses() {
            assert_eq!(ours(&status), serde_json::to_string(&status).unwrap(), "{status:?}");
        }
    }

    #[test]
    fn strings_of_every_length_are_copied_whole_or_escaped_as_serde_json_does() {
        for len in 0..=40 {
            let clean: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let mut cases = vec![clean.clone()];
            for at in 0..len {
                for bad in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
                    let mut text: Vec<char> = clean.chars().collect();
                    text[at] = bad;
                    cases.push(text.into_iter().collect());
                }
                let mut text: Vec<char> = clean.chars().collect();
                text[at] = 'é';
                cases.push(text.into_iter().collect());
            }
            for text in cases {
                let mut out = b"[".to_vec();
                string(&mut out, &text).unwrap();
                assert_eq!(out[1..], serde_json::to_vec(&text).unwrap(), "{text:?}");
            }
        }
    }

    #[test]
    fn only_quotes_backslashes_and_control_characters_need_escaping() {
        for byte in 0..=127u8 {
            let text = format!("0123456789abcdef{}0123", byte as char);
            let needs = serde_json::to_string(&text).unwrap() != format!("\"{text}\"");
            assert_eq!(!plain(text.as_bytes()), needs, "byte {byte:#x}");
            assert_eq!(!plain(&text.as_bytes()[16..]), needs, "byte {byte:#x} in the remainder");
        }
    }
}
