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

    /// A text this kind refuses, if any does (any text is a [`Text`]): lets
    /// a test show that a configuration reads and checks every setting of
    /// its table.
    fn refused_example(&self) -> Option<&'static str> {
        None
    }
}

/// Declares a kind that is a unit struct: its docs, value type, words for
/// the docs, a refused example and its parser.
macro_rules! unit_kind {
    ($(#[$doc:meta])* $kind:ident: $value:ty, $words:literal, $refused:expr, |$name:ident, $text:ident| $parse:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $kind;

        impl Kind for $kind {
            type Value = $value;

            fn parse(&self, $name: &str, $text: &str) -> Result<$value> {
                $parse
            }

            fn describe(&self) -> String {
                $words.to_owned()
            }

            fn refused_example(&self) -> Option<&'static str> {
                $refused
            }
        }
    };
}

unit_kind! {
    /// Any text, as written (trimmed).
    Text: String, "text", None, |_name, text| Ok(text.to_owned())
}

unit_kind! {
    /// A boolean, read by [`validate::boolean`]: `true`/`false`, `1`/`0`,
    /// `yes`/`no`, `on`/`off`, in any case.
    Boolean: bool, "boolean", Some("maybe"), |name, text| validate::boolean(name, text)
}

unit_kind! {
    /// A duration, read by [`duration::parse`]: Go's syntax (`300ms`,
    /// `1m30s`) or plain seconds.
    Duration: std::time::Duration, "duration", Some("soon"),
    |name, text| duration::parse(text).map_err(|e| Error::invalid(name, e.to_string()))
}

unit_kind! {
    /// A quantity in Kubernetes' notation (`128Mi`, `1G`, `500m`), read by
    /// [`validate::quantity_value`] as a number of units.
    Quantity: f64, "quantity", Some("lots"), |name, text| validate::quantity_value(name, text)
}

unit_kind! {
    /// A name that is a DNS-1123 label (a namespace, a stack), checked by
    /// [`validate::dns_label`].
    DnsLabel: String, "DNS-1123 label", Some("Not_A_Label"),
    |name, text| validate::dns_label(name, text).map(|()| text.to_owned())
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

    fn refused_example(&self) -> Option<&'static str> {
        Some("not-a-choice").filter(|example| !self.words().any(|word| word == *example))
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

    fn refused_example(&self) -> Option<&'static str> {
        Some("novalue")
    }
}
