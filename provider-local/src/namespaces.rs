//! The namespaces functions can live in.

use std::collections::BTreeMap;

use faas_core::{validate, Error, FunctionNamespace, DEFAULT_NAMESPACE};

/// The known namespaces; [`DEFAULT_NAMESPACE`] always exists.
#[derive(Debug, Clone)]
pub(crate) struct Namespaces {
    map: BTreeMap<String, FunctionNamespace>,
}

impl Namespaces {
    /// The default namespace plus `saved` ones.
    pub(crate) fn new(saved: impl IntoIterator<Item = FunctionNamespace>) -> Namespaces {
        let mut map = BTreeMap::new();
        map.insert(
            DEFAULT_NAMESPACE.to_owned(),
            FunctionNamespace { name: DEFAULT_NAMESPACE.to_owned(), ..Default::default() },
        );
        for namespace in saved {
            map.insert(namespace.name.clone(), namespace);
        }
        Namespaces { map }
    }

    /// Whether `name` exists.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// `Ok` if `name` exists, else `NotFound` for the namespace.
    pub(crate) fn require(&self, name: &str) -> Result<&FunctionNamespace, Error> {
        self.map.get(name).ok_or_else(|| Error::NotFound { kind: "namespace", name: name.to_owned() })
    }

    /// Every namespace's name, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// Adds or replaces a namespace.
    pub(crate) fn insert(&mut self, namespace: FunctionNamespace) {
        self.map.insert(namespace.name.clone(), namespace);
    }

    /// Forgets a namespace.
    pub(crate) fn remove(&mut self, name: &str) {
        self.map.remove(name);
    }
}

/// Checks a namespace's name and its label and annotation keys.
pub(crate) fn validate_namespace(namespace: &FunctionNamespace) -> Result<(), Error> {
    validate::namespace("name", &namespace.name)?;
    for key in namespace.labels.keys() {
        validate::label_key(&format!("labels.{key}"), key)?;
    }
    for key in namespace.annotations.keys() {
        validate::label_key(&format!("annotations.{key}"), key)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_namespace_always_exists() {
        let mut namespaces = Namespaces::new([FunctionNamespace { name: "team".into(), ..Default::default() }]);
        assert_eq!(namespaces.names(), ["openfaas-fn", "team"]);
        namespaces.remove("team");
        assert!(!namespaces.contains("team"));
        assert!(matches!(namespaces.require("team"), Err(Error::NotFound { kind: "namespace", .. })));
        assert_eq!(namespaces.require(DEFAULT_NAMESPACE).unwrap().name, DEFAULT_NAMESPACE);
    }

    #[test]
    fn namespaces_are_validated() {
        let bad = FunctionNamespace { name: "Team".into(), ..Default::default() };
        assert!(matches!(validate_namespace(&bad), Err(Error::Invalid { field, .. }) if field == "name"));
        let bad_label = FunctionNamespace {
            name: "team".into(),
            labels: BTreeMap::from([("-x".into(), "y".into())]),
            ..Default::default()
        };
        assert!(matches!(validate_namespace(&bad_label), Err(Error::Invalid { field, .. }) if field == "labels.-x"));
    }
}
