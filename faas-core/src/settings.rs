//! Settings read from the environment: the one reader every provider's
//! configuration uses.
//!
//! A provider declares each variable once, as a [`Setting`] (name, kind,
//! what happens when it is unset, meaning), and lists them in its
//! [`Table`]. Its configuration reads them through [`Vars`], which parses
//! every value with the one parser of its [`Kind`]: booleans with
//! [`crate::validate::boolean`], durations with [`crate::duration`],
//! quantities with [`crate::validate::quantity_value`]. A bad value is
//! [`Error::Invalid`] naming the variable and the accepted forms; an empty
//! or blank variable counts as unset. The same table renders the docs'
//! table ([`Table::markdown`]) and the gateway's `--help`
//! ([`Table::help`]), so the three cannot drift apart.
//!
//! The reader does no I/O of its own: [`Vars::new`] takes a lookup
//! function ([`Vars::process`] reads the process environment), so a
//! configuration is testable from a map.
//!
//! ```
//! use faas_core::settings::{kind, Setting, Table, Unset, Vars};
//!
//! static STACK: Setting<kind::Text> =
//!     Setting::new("DEMO_STACK", kind::Text, Unset::Default("functions"), "the stack functions live in");
//! static RETRY: Setting<kind::Duration> =
//!     Setting::new("DEMO_RETRY", kind::Duration, Unset::Default("2s"), "pause between attempts");
//! static TABLE: Table = Table { provider: "demo", prefix: "DEMO_", settings: &[&STACK, &RETRY] };
//!
//! let vars = Vars::from_pairs([("DEMO_RETRY", "1m30s")]);
//! assert_eq!(vars.get(&STACK).unwrap().as_deref(), Some("functions"));
//! assert_eq!(vars.get(&RETRY).unwrap(), Some(std::time::Duration::from_secs(90)));
//! let err = Vars::from_pairs([("DEMO_RETRY", "soon")]).get(&RETRY).unwrap_err();
//! assert!(err.to_string().starts_with("invalid DEMO_RETRY: \"soon\""));
//! assert!(TABLE.markdown().contains("| `DEMO_RETRY` | duration | `2s` | pause between attempts |"));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};

pub mod kind;

pub use kind::Kind;

/// What a variable means when it is unset (or blank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// This text, parsed like a value that was set: the documented default
    /// is the one in force.
    Default(&'static str),
    /// No value; the text says what happens then (for the docs' default
    /// column), e.g. "Kubernetes' default".
    Means(&'static str),
    /// The variable must be set.
    Required,
}

/// One environment variable: its name, the kind of value it takes, what
/// holds when it is unset, and what it means (Markdown, one line: the
/// docs' table and `--help` show it).
#[derive(Debug)]
pub struct Setting<K> {
    /// The variable's name.
    pub name: &'static str,
    /// How its value is parsed.
    pub kind: K,
    /// What holds when it is unset.
    pub unset: Unset,
    /// What it means.
    pub meaning: &'static str,
}

impl<K: Kind> Setting<K> {
    /// A setting; `const` so that tables are `static`.
    pub const fn new(name: &'static str, kind: K, unset: Unset, meaning: &'static str) -> Self {
        Setting { name, kind, unset, meaning }
    }

    /// The text of its default ([`Unset::Default`]), for a flag's
    /// `default_value`; `None` when it has none.
    pub const fn default_text(&self) -> Option<&'static str> {
        match self.unset {
            Unset::Default(text) => Some(text),
            Unset::Means(_) | Unset::Required => None,
        }
    }

    /// Parses `text` as this setting's value: `Invalid` naming the
    /// variable and the accepted forms when it is not one. The parser of
    /// [`Vars::get`], for flags that take the same values (clap's
    /// `value_parser`).
    pub fn parse(&self, text: &str) -> Result<K::Value> {
        self.kind.parse(self.name, text.trim())
    }
}

/// A [`Setting`] of any kind, as a [`Table`] lists it.
pub trait Entry: Sync {
    /// The variable's name.
    fn name(&self) -> &'static str;
    /// The kind of value, in words (the docs' type column).
    fn type_text(&self) -> String;
    /// What holds when it is unset.
    fn unset(&self) -> Unset;
    /// What it means.
    fn meaning(&self) -> &'static str;
    /// Whether its value is a secret, never shown.
    fn is_secret(&self) -> bool;
    /// Checks the declared default parses: `Err` names the variable.
    fn check_default(&self) -> Result<()>;
    /// A value it refuses, if any ([`Kind::refused_example`]).
    fn refused_example(&self) -> Option<&'static str>;
}

impl<K: Kind> Entry for Setting<K> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn type_text(&self) -> String {
        self.kind.describe()
    }

    fn unset(&self) -> Unset {
        self.unset
    }

    fn meaning(&self) -> &'static str {
        self.meaning
    }

    fn is_secret(&self) -> bool {
        self.kind.is_secret()
    }

    fn refused_example(&self) -> Option<&'static str> {
        self.kind.refused_example()
    }

    fn check_default(&self) -> Result<()> {
        match self.unset {
            Unset::Default(text) => self.parse(text).map(drop),
            Unset::Means(_) | Unset::Required => Ok(()),
        }
    }
}

/// A provider's settings: the one place each variable is declared.
pub struct Table {
    /// The provider's name (`swarm`, `k8s`, ...).
    pub provider: &'static str,
    /// The prefix its own variables share (`FAAS_K8S_`, `CATTLE_`).
    /// Variables of the libraries it uses (`DOCKER_HOST`) may be listed
    /// without it.
    pub prefix: &'static str,
    /// Every variable, in the order the docs list them.
    pub settings: &'static [&'static dyn Entry],
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("provider", &self.provider)
            .field("settings", &self.settings.iter().map(|s| s.name()).collect::<Vec<_>>())
            .finish()
    }
}

impl Table {
    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&'static dyn Entry> {
        self.settings.iter().copied().find(|s| s.name() == name)
    }

    /// The names among `names` that carry this table's prefix but name
    /// none of its settings: likely typos, which would otherwise be
    /// ignored silently.
    pub fn unknown<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> Vec<&'n str> {
        names.into_iter().filter(|n| n.starts_with(self.prefix) && self.entry(n).is_none()).collect()
    }

    /// Checks the table itself: names unique and upper-case, defaults that
    /// parse, a meaning for each. Run by each provider's tests.
    pub fn check(&self) -> Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for setting in self.settings {
            let name = setting.name();
            let upper =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !upper {
                return Err(Error::invalid(name, "a setting's name is upper-case letters, digits and '_'"));
            }
            if !seen.insert(name) {
                return Err(Error::invalid(name, format!("is listed twice in the {} table", self.provider)));
            }
            if setting.meaning().trim().is_empty() || setting.meaning().contains('\n') {
                return Err(Error::invalid(name, "needs a meaning of one line"));
            }
            setting.check_default()?;
        }
        Ok(())
    }

    /// The docs' table: `| variable | type | default | meaning |`, a row
    /// per setting, each line ending in `\n`.
    pub fn markdown(&self) -> String {
        let mut out = String::from("| variable | type | default | meaning |\n|---|---|---|---|\n");
        for setting in self.settings {
            let default = match setting.unset() {
                Unset::Default(text) => format!("`{text}`"),
                Unset::Means(text) => text.to_owned(),
                Unset::Required => "required".to_owned(),
            };
            let cells = [format!("`{}`", setting.name()), setting.type_text(), default, setting.meaning().to_owned()];
            out.push_str(&format!("| {} |\n", cells.map(|c| c.replace('|', "\\|")).join(" | ")));
        }
        out
    }

    /// The settings as `--help` lists them: a heading, then per variable
    /// `NAME=<type> [default: ...]` and its meaning indented below, without
    /// Markdown's backticks.
    pub fn help(&self) -> String {
        let plain = |text: &str| text.replace('`', "");
        let mut out = format!("Settings of the {} provider (environment variables):\n", self.provider);
        for setting in self.settings {
            let unset = match setting.unset() {
                Unset::Default(text) => format!(" [default: {text}]"),
                Unset::Means(text) => format!(" [default: {}]", plain(text)),
                Unset::Required => " [required]".to_owned(),
            };
            out.push_str(&format!("  {}=<{}>{unset}\n", setting.name(), plain(&setting.type_text())));
            out.push_str(&format!("          {}\n", plain(setting.meaning())));
        }
        out
    }

    /// Compares the first Markdown table under the heading `heading`
    /// (e.g. `## Settings`) in `document` with [`Table::markdown`]; `Err`
    /// says what differs and gives the table to paste.
    pub fn check_documented(&self, document: &str, heading: &str) -> std::result::Result<(), String> {
        let mut lines = document.lines().skip_while(|l| l.trim_end() != heading).skip(1);
        let documented: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("## ") && !l.starts_with("# "))
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .collect();
        if documented.is_empty() {
            return Err(format!("no table under {heading:?}; expected:\n{}", self.markdown()));
        }
        let expected = self.markdown();
        for (line, (want, got)) in expected.lines().zip(documented.iter()).enumerate() {
            if want != got.trim_end() {
                return Err(format!(
                    "line {} of the {} settings table differs:\n  docs:  {got}\n  table: {want}\nexpected:\n{expected}",
                    line + 1,
                    self.provider
                ));
            }
        }
        if expected.lines().count() != documented.len() {
            return Err(format!(
                "the docs list {} rows, the {} table {}; expected:\n{expected}",
                documented.len().saturating_sub(2),
                self.provider,
                self.settings.len()
            ));
        }
        Ok(())
    }
}

/// A lookup of a variable's value by name.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Where settings are read from: a lookup by name, the process
/// environment in production.
pub struct Vars<'a> {
    lookup: Lookup<'a>,
}

impl fmt::Debug for Vars<'_> {
    /// Shows nothing of the values: some are secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vars").finish_non_exhaustive()
    }
}

impl<'a> Vars<'a> {
    /// Variables looked up through `lookup`.
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Vars { lookup: Box::new(lookup) }
    }

    /// The process environment (variables that are not UTF-8 count as
    /// unset).
    pub fn process() -> Vars<'static> {
        Vars::new(|name| std::env::var(name).ok())
    }

    /// Variables from name-value pairs (tests, or a map read elsewhere).
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Vars<'static> {
        let map: BTreeMap<String, String> = pairs.into_iter().map(|(n, v)| (n.into(), v.into())).collect();
        Vars::new(move |name| map.get(name).cloned())
    }

    /// The value of `setting`: its variable parsed, else its default
    /// parsed, else `None` ([`Unset::Means`]). `Invalid` naming the
    /// variable when the value is not of its kind, or a required one is
    /// unset.
    pub fn get<K: Kind>(&self, setting: &Setting<K>) -> Result<Option<K::Value>> {
        match (self.lookup)(setting.name).filter(|v| !v.trim().is_empty()) {
            Some(text) => setting.parse(&text).map(Some),
            None => match setting.unset {
                Unset::Default(text) => setting.parse(text).map(Some),
                Unset::Means(_) => Ok(None),
                Unset::Required => Err(Error::invalid(setting.name, "must be set")),
            },
        }
    }

    /// As [`Vars::get`] for a setting that always has a value (a default,
    /// or required): `Invalid` naming it when it has none.
    pub fn value<K: Kind>(&self, setting: &Setting<K>) -> Result<K::Value> {
        self.get(setting)?.ok_or_else(|| Error::invalid(setting.name, "must be set"))
    }
}

#[cfg(test)]
mod tests;
