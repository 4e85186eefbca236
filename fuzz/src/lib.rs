//! What the fuzz targets share: the checks on errors.
//!
//! The platform's rule is that bad input is never a panic but an
//! [`faas_core::Error::Invalid`] naming the field, with a reason a user
//! can act on; [`expect_invalid`] checks exactly that.

use faas_core::Error;

/// Panics (a finding) unless `err` is a 400 `Invalid` whose field is one
/// of `fields` exactly or, for an entry ending in `.` or `*`, starts with
/// it, and whose reason says something.
pub fn expect_invalid(err: &Error, fields: &[&str]) {
    let Error::Invalid { field, reason } = err else {
        panic!("bad input gave {err:?}, not Invalid naming the field");
    };
    assert_eq!(err.status(), 400, "{err:?}");
    let named = fields.iter().any(|f| match f.strip_suffix('*') {
        Some(prefix) => field.starts_with(prefix),
        None => field == f || (f.ends_with('.') && field.starts_with(f)),
    });
    assert!(named, "error names {field:?}, expected one of {fields:?}: {reason}");
    assert!(!reason.trim().is_empty(), "error on {field:?} gives no reason");
}

/// The field an `Invalid` error names (empty for any other error).
pub fn invalid_field(err: &Error) -> &str {
    match err {
        Error::Invalid { field, .. } => field,
        _ => "",
    }
}

/// Input bytes as text: libFuzzer's bytes, lossily, so every input
/// reaches the parser.
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}
