use std::fmt;

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// A secret (`/system/secrets`): a name and either a text `value` or raw
/// bytes (`rawValue`, base64 in JSON as Go encodes `[]byte`).
///
/// `Debug` never shows the value, so a secret can be traced safely.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Secret {
    /// The secret's name.
    pub name: String,
    /// Its namespace; empty means the default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The value as text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// The value as bytes; takes precedence over `value` when not empty.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "to_base64", deserialize_with = "from_base64")]
    pub raw_value: Vec<u8>,
}

impl Secret {
    /// The secret's bytes: `rawValue` when set, else `value`.
    pub fn bytes(&self) -> &[u8] {
        if self.raw_value.is_empty() {
            self.value.as_bytes()
        } else {
            &self.raw_value
        }
    }

    /// The namespace, with [`crate::DEFAULT_NAMESPACE`] standing in for an
    /// empty one.
    pub fn namespace_or_default(&self) -> &str {
        if self.namespace.is_empty() {
            crate::DEFAULT_NAMESPACE
        } else {
            &self.namespace
        }
    }

    /// This secret without its value, as listings show it.
    pub fn without_value(&self) -> Secret {
        Secret { name: self.name.clone(), namespace: self.namespace.clone(), ..Secret::default() }
    }

    /// Checks the name and namespace, and that a value is present.
    pub fn validate(&self) -> Result<()> {
        crate::validate::secret_name("name", &self.name)?;
        if !self.namespace.is_empty() {
            crate::validate::namespace("namespace", &self.namespace)?;
        }
        if self.bytes().is_empty() {
            return Err(Error::invalid("value", "a secret needs a value or a rawValue"));
        }
        Ok(())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("value", &"<redacted>")
            .finish()
    }
}

fn to_base64<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn from_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| serde::de::Error::custom(format!("rawValue is not valid base64: {e}")))
}
