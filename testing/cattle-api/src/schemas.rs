//! The schemas the server serves: the subset of Rancher's v2-beta schemas
//! it implements (see `schemas/README.md` for their source and license),
//! with links rewritten to this server.

use serde_json::{Map, Value};

/// The v2-beta schemas this server implements, as a Rancher server
/// returned them.
const V2_BETA: &str = include_str!("../schemas/v2-beta.json");
/// `secret` and `secretReference`, from the Rancher 1.6 API docs.
const SECRETS: &str = include_str!("../schemas/v1.6-secrets.json");
/// `error`, from rancher/api-spec.
const ERROR: &str = include_str!("../schemas/api-spec-error.json");

/// The schemas, by id.
#[derive(Debug, Clone)]
pub(crate) struct Schemas {
    list: Vec<Map<String, Value>>,
}

impl Schemas {
    /// The schemas; with `secrets`, also `secret`, `secretReference` and
    /// `launchConfig.secrets` as Rancher 1.6 added them.
    pub(crate) fn load(secrets: bool) -> Schemas {
        let mut list: Vec<Map<String, Value>> =
            serde_json::from_str(V2_BETA).expect("the embedded v2-beta schemas are valid JSON");
        list.push(serde_json::from_str(ERROR).expect("the embedded error schema is valid JSON"));
        if secrets {
            let extra: Vec<Map<String, Value>> =
                serde_json::from_str(SECRETS).expect("the embedded secret schemas are valid JSON");
            list.extend(extra);
            let field = serde_json::json!({
                "type": "array[secretReference]", "create": true, "update": false, "nullable": true
            });
            for schema in list.iter_mut().filter(|s| s["id"] == "launchConfig") {
                if let Some(Value::Object(fields)) = schema.get_mut("resourceFields") {
                    fields.insert("secrets".to_owned(), field.clone());
                }
            }
        }
        Schemas { list }
    }

    /// One schema.
    pub(crate) fn get(&self, id: &str) -> Option<&Map<String, Value>> {
        self.list.iter().find(|s| s["id"] == id)
    }

    /// Every schema id.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> {
        self.list.iter().filter_map(|s| s["id"].as_str())
    }

    /// The schema whose `pluralName` is `plural` (the collection's name).
    pub(crate) fn by_plural(&self, plural: &str) -> Option<&Map<String, Value>> {
        self.list.iter().find(|s| s["pluralName"] == plural)
    }

    /// `schema` rendered for a client: links to itself and (when its
    /// collection can be listed or created in) to its collection under
    /// `base` (the project URL).
    pub(crate) fn render(&self, schema: &Map<String, Value>, base: &str, version_root: &str) -> Value {
        let mut out = schema.clone();
        let id = schema["id"].as_str().unwrap_or_default();
        let mut links = Map::new();
        links.insert("self".into(), Value::String(format!("{version_root}/schemas/{id}")));
        let has_collection = schema["collectionMethods"].as_array().is_some_and(|m| m.iter().any(|m| m == "GET"));
        if has_collection {
            let plural = schema["pluralName"].as_str().unwrap_or_default();
            links.insert("collection".into(), Value::String(format!("{base}/{plural}")));
        }
        out.insert("links".into(), Value::Object(links));
        out.insert("actions".into(), Value::Object(Map::new()));
        out.insert("baseType".into(), Value::String("schema".into()));
        Value::Object(out)
    }

    /// Whether `method` is allowed on `schema`'s collections
    /// (`collection = true`) or resources.
    pub(crate) fn allows(schema: &Map<String, Value>, collection: bool, method: &str) -> bool {
        let key = if collection { "collectionMethods" } else { "resourceMethods" };
        schema[key].as_array().is_some_and(|m| m.iter().any(|m| m == method))
    }

    /// The filter modifiers `schema`'s collections allow on `field`.
    pub(crate) fn filter_modifiers<'a>(schema: &'a Map<String, Value>, field: &str) -> Option<Vec<&'a str>> {
        let filter = schema.get("collectionFilters")?.get(field)?;
        let mut modifiers: Vec<&str> =
            filter["modifiers"].as_array().map(|m| m.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        if !modifiers.contains(&"eq") {
            modifiers.push("eq");
        }
        Some(modifiers)
    }

    /// The field's schema entry (`type`, `create`, `update`, ...).
    pub(crate) fn field<'a>(schema: &'a Map<String, Value>, field: &str) -> Option<&'a Map<String, Value>> {
        schema.get("resourceFields")?.get(field)?.as_object()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_schemas_hold_what_the_server_serves() {
        let plain = Schemas::load(false);
        for id in ["schema", "stack", "service", "instance", "container", "launchConfig", "serviceUpgrade", "error"] {
            assert!(plain.get(id).is_some(), "{id}");
        }
        assert!(plain.get("secret").is_none());
        assert!(Schemas::field(plain.get("launchConfig").unwrap(), "secrets").is_none());
        let with = Schemas::load(true);
        assert!(with.get("secret").is_some());
        let secrets = Schemas::field(with.get("launchConfig").unwrap(), "secrets").unwrap();
        assert_eq!(secrets["type"], "array[secretReference]");
        assert_eq!(Schemas::field(with.get("service").unwrap(), "scale").unwrap()["type"], "int");
        assert!(Schemas::allows(with.get("service").unwrap(), true, "POST"));
        assert!(!Schemas::allows(with.get("instance").unwrap(), false, "DELETE"));
    }
}
