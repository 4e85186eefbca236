//! The resource kinds the server serves, as the discovery documents list
//! them.

/// One resource kind (a REST collection).
#[derive(Debug)]
pub(crate) struct Kind {
    /// The resource name as URLs and RBAC spell it (`deployments`).
    pub(crate) plural: &'static str,
    /// The singular name (`deployment`).
    pub(crate) singular: &'static str,
    /// The API group (`""` for the core group).
    pub(crate) group: &'static str,
    /// The group's version (`v1`).
    pub(crate) version: &'static str,
    /// The object kind (`Deployment`).
    pub(crate) kind: &'static str,
    /// Whether objects live in a namespace.
    pub(crate) namespaced: bool,
    /// kubectl short names.
    pub(crate) short_names: &'static [&'static str],
    /// Subresources served (`status`, `scale`, `log`, `proxy`).
    pub(crate) subresources: &'static [&'static str],
    /// Whether the main resource ignores `status` on writes (a `status`
    /// subresource exists).
    pub(crate) has_status: bool,
}

impl Kind {
    /// `apps/v1`, or `v1` for the core group.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `secrets` for the core group: how Status
    /// messages name the resource.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps`, or `Service` for the core group: how Invalid
    /// messages name the kind.
    pub(crate) fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// The verbs every kind serves.
pub(crate) fn verbs() -> &'static [&'static str] {
    VERBS
}

/// Every kind served.
pub(crate) static KINDS: &[Kind] = &[
    Kind {
        plural: "namespaces",
        singular: "namespace",
        group: "",
        version: "v1",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        subresources: &["status", "finalize"],
        has_status: true,
    },
    Kind {
        plural: "secrets",
        singular: "secret",
        group: "",
        version: "v1",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        subresources: &[],
        has_status: false,
    },
    Kind {
        plural: "configmaps",
        singular: "configmap",
        group: "",
        version: "v1",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        subresources: &[],
        has_status: false,
    },
    Kind {
        plural: "services",
        singular: "service",
        group: "",
        version: "v1",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        subresources: &["status", "proxy"],
        has_status: true,
    },
    Kind {
        plural: "pods",
        singular: "pod",
        group: "",
        version: "v1",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        subresources: &["status", "log"],
        has_status: true,
    },
    Kind {
        plural: "resourcequotas",
        singular: "resourcequota",
        group: "",
        version: "v1",
        kind: "ResourceQuota",
        namespaced: true,
        short_names: &["quota"],
        subresources: &["status"],
        has_status: true,
    },
    Kind {
        plural: "deployments",
        singular: "deployment",
        group: "apps",
        version: "v1",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        subresources: &["status", "scale"],
        has_status: true,
    },
    Kind {
        plural: "endpointslices",
        singular: "endpointslice",
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        namespaced: true,
        short_names: &[],
        subresources: &[],
        has_status: false,
    },
];

/// The kind served at `group`/`version` under `plural`.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// The kind named `plural` (plurals are unique across the groups served).
pub(crate) fn by_plural(plural: &str) -> &'static Kind {
    KINDS.iter().find(|k| k.plural == plural).unwrap_or(&KINDS[0])
}

/// The API groups served, besides the core group: (group, version).
pub(crate) fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&'static str, &'static str)> = Vec::new();
    for kind in KINDS.iter().filter(|k| !k.group.is_empty()) {
        if !groups.contains(&(kind.group, kind.version)) {
            groups.push((kind.group, kind.version));
        }
    }
    groups
}
