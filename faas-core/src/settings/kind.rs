//! The kinds of value a [`super::Setting`] takes, each with the one parser
//! of its kind and the words the docs use for it.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::{duration, validate};

/// A kind of value: how text becomes one, and how the docs name it.
pub trait Kind: Sync {
    /// What a value of this kind is read as.
    type Value;

    /// Parses `text` (already trimmed, not empty) for the variable `name`:
    /// `Invalid` naming `name` and the accepted forms otherwise. Never
    /// repeats the text of a secret.
    fn parse(&self, name: &str, text: &str) -> Result<Self::Value>;

    /// The kind in words, for the docs' type column (Markdown).
    fn describe(&self) -> String;

    /// Whether values of this kind are secrets (never shown).
    fn is_secret(&self) -> bool {
        false
    }
}

/// Any text, as written (trimmed).
#[derive(Debug, Clone, Copy)]
pub struct Text;

impl Kind for Text {
    type Value = String;

    fn parse(&self, _name: &str, text: &str) -> Result<String> {
        Ok(text.to_owned())
    }

    fn describe(&self) -> String {
        "text".to_owned()
    }
}

/// Text that is a secret: a key, a password, a token. Never shown in
/// errors, `--help` or the docs (only its name is).
#[derive(Debug, Clone, Copy)]
pub struct Secret;

impl Kind for Secret {
    type Value = String;

    fn parse(&self, _name: &str, text: &str) -> Result<String> {
        Ok(text.to_owned())
    }

    fn describe(&self) -> String {
        "secret".to_owned()
    }

    fn is_secret(&self) -> bool {
        true
    }
}

/// A boolean, read by [`validate::boolean`]: `true`/`false`, `1`/`0`,
/// `yes`/`no`, `on`/`off`, in any case.
#[derive(Debug, Clone, Copy)]
pub struct Boolean;

impl Kind for Boolean {
    type Value = bool;

    fn parse(&self, name: &str, text: &str) -> Result<bool> {
        validate::boolean(name, text)
    }

    fn describe(&self) -> String {
        "boolean".to_owned()
    }
}

/// A duration, read by [`duration::parse`]: Go's syntax (`300ms`,
/// `1m30s`) or plain seconds.
#[derive(Debug, Clone, Copy)]
pub struct Duration;

impl Kind for Duration {
    type Value = std::time::Duration;

    fn parse(&self, name: &str, text: &str) -> Result<std::time::Duration> {
        duration::parse(text).map_err(|e| Error::invalid(name, e.to_string()))
    }

    fn describe(&self) -> String {
        "duration".to_owned()
    }
}

/// A quantity in Kubernetes' notation (`128Mi`, `1G`, `500m`), read by
/// [`validate::quantity_value`] as a number of units.
#[derive(Debug, Clone, Copy)]
pub struct Quantity;

impl Kind for Quantity {
    type Value = f64;

    fn parse(&self, name: &str, text: &str) -> Result<f64> {
        validate::quantity_value(name, text)
    }

    fn describe(&self) -> String {
        "quantity".to_owned()
    }
}

/// A name that is a DNS-1123 label (a namespace, a stack), checked by
/// [`validate::dns_label`].
#[derive(Debug, Clone, Copy)]
pub struct DnsLabel;

impl Kind for DnsLabel {
    type Value = String;

    fn parse(&self, name: &str, text: &str) -> Result<String> {
        validate::dns_label(name, text).map(|()| text.to_owned())
    }

    fn describe(&self) -> String {
        "DNS-1123 label".to_owned()
    }
}

/// One of a few words, each standing for a value (case-sensitive, as
/// written in the table).
#[derive(Debug)]
pub struct Choice<T: 'static>(pub &'static [(&'static str, T)]);

impl<T: 'static> Choice<T> {
    /// The words, in the table's order.
    pub fn words(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(word, _)| *word)
    }

    /// `` `a` ``, `` `a` or `b` ``, `` `a`, `b` or `c` ``.
    fn listed(&self) -> String {
        let words: Vec<String> = self.words().map(|w| format!("`{w}`")).collect();
        match words.split_last() {
            None => String::new(),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        }
    }
}

impl<T: Clone + Sync + 'static> Kind for Choice<T> {
    type Value = T;

    fn parse(&self, name: &str, text: &str) -> Result<T> {
        self.0
            .iter()
            .find(|(word, _)| *word == text)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| Error::invalid(name, format!("{text:?} is not one of {}", self.listed())))
    }

    fn describe(&self) -> String {
        self.listed()
    }
}

/// `key=value` pairs separated by commas (blanks around each ignored,
/// empty pairs skipped): labels, for instance.
#[derive(Debug, Clone, Copy)]
pub struct Pairs;

impl Kind for Pairs {
    type Value = BTreeMap<String, String>;

    fn parse(&self, name: &str, text: &str) -> Result<BTreeMap<String, String>> {
        let mut pairs = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                Error::invalid(name, format!("{pair:?} is not key=value (pairs: key=value,key=value)"))
            })?;
            pairs.insert(key.trim().to_owned(), value.trim().to_owned());
        }
        Ok(pairs)
    }

    fn describe(&self) -> String {
        "`key=value,...`".to_owned()
    }
}
