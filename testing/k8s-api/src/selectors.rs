//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!key`, `>`,
//! `<`) and field selectors (`metadata.name`, `metadata.namespace` and a
//! few per-kind fields), as the API server parses them.

use serde_json::Value;

use crate::kinds::Kind;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector {
    requirements: Vec<(String, Op)>,
}

fn split_top_level(input: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in input.chars() {
        match c {
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
}

fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() || p.len() > 253 || !p.split('.').all(crate::validate::is_dns_label) {
            return false;
        }
    }
    crate::validate::is_qualified_name_part(name)
}

fn parse_values(s: &str) -> Result<Vec<String>, String> {
    let s = s.trim();
    let inner =
        s.strip_prefix('(').and_then(|s| s.strip_suffix(')')).ok_or_else(|| format!("found '{s}', expected: '('"))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    for v in &values {
        if !crate::validate::is_label_value(v) {
            return Err(format!("invalid label value: \"{v}\""));
        }
    }
    Ok(values)
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub(crate) fn parse(input: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        if input.trim().is_empty() {
            return Ok(LabelSelector { requirements });
        }
        for part in split_top_level(input) {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!("unable to parse requirement: found '', in selector {input:?}"));
            }
            let (key, op) = if let Some(key) = part.strip_prefix('!') {
                (key.trim().to_string(), Op::DoesNotExist)
            } else if let Some((k, v)) = part.split_once("!=") {
                (k.trim().to_string(), Op::NotEq(v.trim().to_string()))
            } else if let Some((k, v)) = part.split_once("==") {
                (k.trim().to_string(), Op::Eq(v.trim().to_string()))
            } else if let Some((k, v)) = part.split_once('=') {
                (k.trim().to_string(), Op::Eq(v.trim().to_string()))
            } else if let Some((k, v)) = part.split_once(" notin ") {
                (k.trim().to_string(), Op::NotIn(parse_values(v)?))
            } else if let Some((k, v)) = part.split_once(" in ") {
                (k.trim().to_string(), Op::In(parse_values(v)?))
            } else if let Some((k, v)) = part.split_once('>') {
                let n = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("for 'Gt', 'Lt' operators, the value must be an integer: {v:?}"))?;
                (k.trim().to_string(), Op::Gt(n))
            } else if let Some((k, v)) = part.split_once('<') {
                let n = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("for 'Gt', 'Lt' operators, the value must be an integer: {v:?}"))?;
                (k.trim().to_string(), Op::Lt(n))
            } else {
                (part.to_string(), Op::Exists)
            };
            if !valid_key(&key) {
                return Err(format!("unable to parse requirement: invalid label key \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
            }
            if let Op::Eq(v) | Op::NotEq(v) = &op {
                if !crate::validate::is_label_value(v) {
                    return Err(format!("unable to parse requirement: invalid label value: \"{v}\""));
                }
            }
            requirements.push((key, op));
        }
        Ok(LabelSelector { requirements })
    }

    /// A selector from `matchLabels` (a service's `spec.selector`).
    pub(crate) fn from_map(labels: &serde_json::Map<String, Value>) -> LabelSelector {
        LabelSelector {
            requirements: labels
                .iter()
                .map(|(k, v)| (k.clone(), Op::Eq(v.as_str().unwrap_or_default().to_string())))
                .collect(),
        }
    }

    /// A selector from a LabelSelector object (`matchLabels` and
    /// `matchExpressions`).
    pub(crate) fn from_object(selector: &Value) -> LabelSelector {
        let mut out = selector["matchLabels"].as_object().map(LabelSelector::from_map).unwrap_or_default();
        for expr in selector["matchExpressions"].as_array().into_iter().flatten() {
            let key = expr["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> =
                expr["values"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
            let op = match expr["operator"].as_str().unwrap_or_default() {
                "In" => Op::In(values),
                "NotIn" => Op::NotIn(values),
                "Exists" => Op::Exists,
                _ => Op::DoesNotExist,
            };
            out.requirements.push((key, op));
        }
        out
    }

    /// Whether the selector selects nothing in particular (matches all).
    pub(crate) fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` (an object's metadata.labels) match.
    pub(crate) fn matches(&self, labels: &Value) -> bool {
        self.requirements.iter().all(|(key, op)| {
            let value = labels.get(key).and_then(Value::as_str);
            match op {
                Op::Eq(v) => value == Some(v.as_str()),
                Op::NotEq(v) => value != Some(v.as_str()),
                Op::In(vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
                Op::NotIn(vs) => !value.is_some_and(|x| vs.iter().any(|v| v == x)),
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
                Op::Gt(n) => value.and_then(|x| x.parse::<i64>().ok()).is_some_and(|x| x > *n),
                Op::Lt(n) => value.and_then(|x| x.parse::<i64>().ok()).is_some_and(|x| x < *n),
            }
        })
    }

    /// `a=b,c=d`, as the scale subresource's status.selector shows it.
    pub(crate) fn render(&self) -> String {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|(k, op)| match op {
                Op::Eq(v) => format!("{k}={v}"),
                Op::NotEq(v) => format!("{k}!={v}"),
                Op::In(vs) => format!("{k} in ({})", vs.join(",")),
                Op::NotIn(vs) => format!("{k} notin ({})", vs.join(",")),
                Op::Exists => k.clone(),
                Op::DoesNotExist => format!("!{k}"),
                Op::Gt(n) => format!("{k}>{n}"),
                Op::Lt(n) => format!("{k}<{n}"),
            })
            .collect();
        parts.join(",")
    }
}

/// A parsed field selector.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldSelector {
    requirements: Vec<(String, bool, String)>,
}

/// The fields each kind can be selected by, besides metadata.name and
/// metadata.namespace.
fn extra_fields(kind: &Kind) -> &'static [&'static str] {
    match kind.plural {
        "pods" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
        ],
        "secrets" => &["type"],
        "namespaces" => &["status.phase"],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter for a kind.
    pub(crate) fn parse(input: &str, kind: &Kind) -> Result<FieldSelector, String> {
        let mut requirements = Vec::new();
        if input.trim().is_empty() {
            return Ok(FieldSelector { requirements });
        }
        for part in input.split(',') {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid selector: '{input}'; can't understand '{part}'"));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" && !extra_fields(kind).contains(&field) {
                return Err(format!("field label not supported: {field}"));
            }
            requirements.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether an object matches.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|(field, equal, value)| {
            let mut v = object;
            for p in field.split('.') {
                v = &v[p];
            }
            let actual = v.as_str().unwrap_or("");
            (actual == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_operators() {
        let labels = json!({"app": "a", "tier": "web", "n": "5"});
        let yes = [
            "app=a",
            "app==a",
            "app!=b",
            "missing!=x",
            "app in (a,b)",
            "app notin (b)",
            "missing notin (b)",
            "tier",
            "!missing",
            "n>4",
            "n<6",
            "app=a,tier=web",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&labels), "{s}");
        }
        let no = ["app=b", "app!=a", "app in (b,c)", "app notin (a)", "missing", "!app", "n>5", "app=a,tier=db"];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&labels), "{s}");
        }
        assert!(LabelSelector::parse("app in a").is_err());
        assert!(LabelSelector::parse("-bad-=x").is_err());
    }
}
