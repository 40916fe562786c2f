//! OpenAPI v3 documents for the served resources, as `GET /openapi/v3[/...]` answers them.
//!
//! kube-apiserver publishes one OpenAPI 3.0 document per group-version plus a root index of them.
//! kubectl reads them to decide whether the server validates fields itself (`fieldValidation` on
//! the PATCH operation of a kind), to compute strategic merge patches (`x-kubernetes-patch-*` on
//! lists) and for `kubectl explain`. The schemas come from k8s-openapi's `schemars` feature
//! (descriptions, types, formats, required fields of the v1.33 types), with upstream's naming
//! (`io.k8s.api.apps.v1.Deployment`) and the Kubernetes extensions added on top.
//!
//! Every document is built once, on first use, and kept as serialized bytes.

mod components;
mod kinds;
mod list_semantics;
mod params;
mod paths;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::{json, Map, Value};

use api::ResourceInfo;

/// The served OpenAPI v3 documents; cheap to clone, built lazily on the first request.
#[derive(Clone, Default)]
pub struct OpenApi {
    docs: Arc<OnceLock<Docs>>,
}

/// The serialized documents: the root index and one document per group-version.
struct Docs {
    root: Bytes,
    /// Keyed by the path below `/openapi/v3/`: `api/v1`, `apis/apps/v1`, ...
    by_path: BTreeMap<String, (Bytes, String)>,
}

impl OpenApi {
    pub fn new() -> Self {
        Self::default()
    }

    /// `GET /openapi/v3`: `{"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=H"},...}}`.
    pub fn root(&self) -> Bytes {
        self.docs().root.clone()
    }

    /// `GET /openapi/v3/<path>` with `path` like `api/v1` or `apis/apps/v1` (a leading `/`
    /// is tolerated): the group-version document and its hash (for `ETag`), or `None`.
    pub fn group_version(&self, path: &str) -> Option<(Bytes, String)> {
        let path = path.trim_start_matches('/').trim_end_matches('/');
        self.docs().by_path.get(path).cloned()
    }

    fn docs(&self) -> &Docs {
        self.docs.get_or_init(build_all)
    }
}

/// The path of a group-version's document below `/openapi/v3/`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn build_all() -> Docs {
    let mut groups: BTreeMap<(&'static str, &'static str), Vec<&'static ResourceInfo>> = BTreeMap::new();
    for r in api::RESOURCES {
        groups.entry((r.group, r.version)).or_default().push(r);
    }
    let mut by_path = BTreeMap::new();
    let mut index = Map::new();
    for ((group, version), resources) in groups {
        let doc = group_version_doc(group, version, &resources);
        let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        let hash = content_hash(&bytes);
        let path = gv_path(group, version);
        index.insert(path.clone(), json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}") }));
        by_path.insert(path, (bytes, hash));
    }
    let root = json!({ "paths": index });
    Docs { root: Bytes::from(serde_json::to_vec(&root).unwrap_or_default()), by_path }
}

/// The OpenAPI document of one group-version.
fn group_version_doc(group: &str, version: &str, resources: &[&ResourceInfo]) -> Value {
    let components = components::build(resources);
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "paths": paths::paths(group, version, resources, &components),
        "components": { "schemas": components.schemas },
    })
}

/// An upper-case hex digest of the document, used as `?hash=` and `ETag` (a cache key only).
fn content_hash(bytes: &[u8]) -> String {
    // Two independent FNV-1a 64 lanes: stable across builds and processes, unlike SipHash keys.
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for &byte in bytes {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ u64::from(byte.rotate_left(3))).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{a:016X}{b:016X}")
}
