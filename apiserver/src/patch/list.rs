//! How strategic merge patch merges one list, by its [`ListType`]:
//!
//! - **Map** (keyed by `patchMergeKey`, the first key): a patch item merges into the original
//!   item with the same key, or is added; `{"<key>": x, "$patch": "delete"}` deletes the items
//!   with key `x`; an item `{"$patch": "replace"}` makes the other patch items the whole list.
//! - **Set** (scalars): the union, each value once; `{"$patch": "replace"}` replaces.
//! - **Atomic**: the patch list replaces the original.
//!
//! Order follows upstream's `normalizeElementOrder`: patch items keep the patch's order,
//! original-only items keep theirs, and an original-only item goes before a patch item only if
//! it came before it in the original list — so, without `$setElementOrder`, a new item lands
//! before the original-only items that follow the last matched item. `$setElementOrder/<list>`
//! orders the merged list the same way with its own order in place of the patch's, and
//! `$deleteFromPrimitiveList/<list>` removes values afterwards.

use serde_json::{Map, Value};

use super::eq::json_eq;
use super::error::{snippet, type_name};
use super::merge_keys::ListType;
use super::strategic::{Merger, PATCH};
use super::PatchError;

impl Merger<'_> {
    /// Merges the patch list `patch` into `current` (either may be absent) at the current path,
    /// then applies `$setElementOrder` (`order`) and `$deleteFromPrimitiveList` (`delete`).
    /// `None` when there is no list on either side.
    pub(super) fn merge_list(
        &mut self,
        current: Option<Vec<Value>>,
        patch: Option<&[Value]>,
        order: Option<&Value>,
        delete: Option<&Value>,
        depth: usize,
    ) -> Result<Option<Vec<Value>>, PatchError> {
        let list_type = self.list_type();
        let merge_key = match list_type {
            ListType::Map(keys) => keys.first().copied(),
            ListType::Set | ListType::Atomic => None,
        };
        let server_keys: Vec<Value> = match (&current, order) {
            (Some(items), Some(_)) => {
                items.iter().map(|i| key_of(i, merge_key).cloned().unwrap_or(Value::Null)).collect()
            }
            _ => Vec::new(),
        };
        let mut merged = match (current, patch) {
            (current, Some(patch)) => {
                let current = current.unwrap_or_default();
                match list_type {
                    ListType::Atomic => self.replace_atomic(patch, depth)?,
                    ListType::Set => self.merge_set(current, patch)?,
                    ListType::Map(_) => self.merge_keyed(current, patch, merge_key.unwrap_or("name"), depth)?,
                }
            }
            (Some(current), None) => current,
            (None, None) => return Ok(None),
        };
        if let Some(order) = order {
            merged = self.set_element_order(merged, list_type, merge_key, order, patch, &server_keys)?;
        }
        if let Some(delete) = delete {
            merged = self.delete_from_primitive_list(merged, list_type, delete)?;
        }
        Ok(Some(merged))
    }

    /// An atomic list: the patch items, with directives applied inside object items.
    fn replace_atomic(&mut self, patch: &[Value], depth: usize) -> Result<Vec<Value>, PatchError> {
        let mut out = Vec::with_capacity(patch.len());
        for item in patch {
            match item {
                Value::Object(o) => match o.get(PATCH) {
                    None => out.push(Value::Object(self.merge_map(Map::new(), o, depth + 1)?.unwrap_or_default())),
                    Some(Value::String(d)) if d == "replace" => {}
                    Some(d) => {
                        return Err(self.bad_directive(
                            PATCH,
                            format!(
                                "{d} in an item of a list that is replaced whole (it has no merge key); \
                                 only \"replace\" is allowed there"
                            ),
                        ))
                    }
                },
                Value::Array(inner) => out.push(Value::Array(self.replace_atomic(inner, depth + 1)?)),
                scalar => out.push(scalar.clone()),
            }
        }
        Ok(out)
    }

    /// A list of scalars merged as a set.
    fn merge_set(&mut self, current: Vec<Value>, patch: &[Value]) -> Result<Vec<Value>, PatchError> {
        let mut replace = false;
        let mut added: Vec<Value> = Vec::with_capacity(patch.len());
        for item in patch {
            match item {
                Value::Object(o) if o.contains_key(PATCH) => match o.get(PATCH) {
                    Some(Value::String(d)) if d == "replace" => replace = true,
                    Some(d) => {
                        return Err(self.bad_directive(
                            PATCH,
                            format!("{d} in a list of scalars; only \"replace\" is allowed there"),
                        ))
                    }
                    None => {}
                },
                Value::Object(_) | Value::Array(_) => {
                    return Err(PatchError::BadValue {
                        path: self.here(),
                        reason: format!(
                            "this list is a set of scalars, but the patch has {} in it: {}",
                            type_name(item),
                            snippet(item)
                        ),
                    })
                }
                scalar => added.push(scalar.clone()),
            }
        }
        if replace {
            return Ok(dedup(added));
        }
        let server_order = current.clone();
        let merged = dedup(current.into_iter().chain(added.iter().cloned()).collect());
        Ok(normalize_order(merged, None, &added, &server_order))
    }

    /// A list of objects merged by `key`.
    fn merge_keyed(
        &mut self,
        mut current: Vec<Value>,
        patch: &[Value],
        key: &'static str,
        depth: usize,
    ) -> Result<Vec<Value>, PatchError> {
        let mut replace = false;
        let mut items: Vec<(&Map<String, Value>, &Value)> = Vec::with_capacity(patch.len());
        for item in patch {
            let Value::Object(o) = item else {
                return Err(PatchError::BadValue {
                    path: self.here(),
                    reason: format!(
                        "this list is merged by key {key:?}, so its items must be objects, not {}: {}",
                        type_name(item),
                        snippet(item)
                    ),
                });
            };
            match o.get(PATCH) {
                None => items.push((o, self.merge_key_of(o, key)?)),
                Some(Value::String(d)) if d == "merge" => items.push((o, self.merge_key_of(o, key)?)),
                Some(Value::String(d)) if d == "replace" => replace = true,
                Some(Value::String(d)) if d == "delete" => {
                    let k = self.merge_key_of(o, key)?;
                    current.retain(|c| !key_of(c, Some(key)).is_some_and(|ck| json_eq(ck, k)));
                }
                Some(other) => {
                    return Err(
                        self.bad_directive(PATCH, format!("{other} is not \"replace\", \"delete\" or \"merge\""))
                    )
                }
            }
        }
        if replace {
            let mut out = Vec::with_capacity(items.len());
            for (o, _) in items {
                out.push(Value::Object(self.merge_map(Map::new(), o, depth + 1)?.unwrap_or_default()));
            }
            return Ok(out);
        }
        let server_order: Vec<Value> =
            current.iter().map(|c| key_of(c, Some(key)).cloned().unwrap_or(Value::Null)).collect();
        for (o, k) in &items {
            let found = current.iter_mut().find(|c| key_of(c, Some(key)).is_some_and(|ck| json_eq(ck, k)));
            match found {
                Some(slot) => {
                    let base = match std::mem::take(slot) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    *slot = Value::Object(self.merge_map(base, o, depth + 1)?.unwrap_or_default());
                }
                None => current.push(Value::Object(self.merge_map(Map::new(), o, depth + 1)?.unwrap_or_default())),
            }
        }
        let patch_order: Vec<Value> = items.iter().map(|(_, k)| (*k).clone()).collect();
        Ok(normalize_order(current, Some(key), &patch_order, &server_order))
    }

    /// The merge-key value of a patch item, which must be there.
    fn merge_key_of<'v>(&self, item: &'v Map<String, Value>, key: &'static str) -> Result<&'v Value, PatchError> {
        match item.get(key) {
            Some(v) if !v.is_null() => Ok(v),
            _ => {
                Err(PatchError::MissingMergeKey { path: self.here(), key, item: snippet(&Value::Object(item.clone())) })
            }
        }
    }

    /// `$setElementOrder/<list>`: checks the order list against the patch list, then orders.
    fn set_element_order(
        &self,
        merged: Vec<Value>,
        list_type: ListType,
        merge_key: Option<&'static str>,
        order: &Value,
        patch: Option<&[Value]>,
        server_keys: &[Value],
    ) -> Result<Vec<Value>, PatchError> {
        let directive = format!("$setElementOrder/{}", self.path.last().map(String::as_str).unwrap_or(""));
        let Value::Array(order) = order else {
            return Err(self.bad_directive(&directive, format!("must be a list, not {}", type_name(order))));
        };
        if list_type == ListType::Atomic {
            // The patch list already is the whole list, in its order.
            return Ok(merged);
        }
        let mut order_keys = Vec::with_capacity(order.len());
        for item in order {
            match (merge_key, item) {
                (Some(key), Value::Object(o)) => order_keys.push(self.merge_key_of(o, key)?.clone()),
                (Some(key), other) => {
                    return Err(self.bad_directive(
                        &directive,
                        format!("its items must be objects holding {key:?}, not {}", snippet(other)),
                    ))
                }
                (None, scalar) => order_keys.push(scalar.clone()),
            }
        }
        // The patch's items (deletions and directive items aside) must appear in the order
        // list, in the same relative order.
        let mut next = 0;
        for item in patch.unwrap_or_default() {
            let k = match (merge_key, item) {
                (_, Value::Object(o)) if o.contains_key(PATCH) => continue,
                (Some(key), _) => match key_of(item, Some(key)) {
                    Some(k) => k,
                    None => continue,
                },
                (None, scalar) => scalar,
            };
            match order_keys.iter().skip(next).position(|o| json_eq(o, k)) {
                Some(i) => next += i + 1,
                None => {
                    return Err(self.bad_directive(
                        &directive,
                        format!(
                            "the order it gives doesn't match the patch list: {} is missing or out of order",
                            snippet(k)
                        ),
                    ))
                }
            }
        }
        Ok(normalize_order(merged, merge_key, &order_keys, server_keys))
    }

    /// `$deleteFromPrimitiveList/<list>`: removes every listed value.
    fn delete_from_primitive_list(
        &self,
        merged: Vec<Value>,
        list_type: ListType,
        delete: &Value,
    ) -> Result<Vec<Value>, PatchError> {
        let directive = format!("$deleteFromPrimitiveList/{}", self.path.last().map(String::as_str).unwrap_or(""));
        if let ListType::Map(keys) = list_type {
            return Err(self.bad_directive(
                &directive,
                format!(
                    "this list holds objects merged by {:?}; delete an item with {{\"$patch\": \"delete\"}} instead",
                    keys.first().copied().unwrap_or("name")
                ),
            ));
        }
        let Value::Array(delete) = delete else {
            return Err(self.bad_directive(&directive, format!("must be a list, not {}", type_name(delete))));
        };
        Ok(merged.into_iter().filter(|v| !delete.iter().any(|d| json_eq(d, v))).collect())
    }
}

/// What names an item for merging and ordering: its merge-key value in a keyed list (never
/// `null`), the item itself in a list of scalars.
fn key_of<'v>(item: &'v Value, merge_key: Option<&str>) -> Option<&'v Value> {
    match merge_key {
        Some(key) => item.get(key).filter(|v| !v.is_null()),
        None => Some(item),
    }
}

/// `values` without repeats, first occurrences kept in place.
fn dedup(values: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(values.len());
    for v in values {
        if !out.iter().any(|o| json_eq(o, &v)) {
            out.push(v);
        }
    }
    out
}

fn position(keys: &[Value], key: &Value) -> Option<usize> {
    keys.iter().position(|k| json_eq(k, key))
}

/// Upstream's `normalizeElementOrder`: the items named in `wanted` (by key), sorted by their
/// place there, interleaved with the other items (kept in their order) so that one of those
/// goes before a named item only when `server` (the original list's keys) had it first.
fn normalize_order(items: Vec<Value>, merge_key: Option<&str>, wanted: &[Value], server: &[Value]) -> Vec<Value> {
    let mut named: Vec<(usize, Value)> = Vec::new();
    let mut others: Vec<Value> = Vec::new();
    for item in items {
        match key_of(&item, merge_key).and_then(|k| position(wanted, k)) {
            Some(i) => named.push((i, item)),
            None => others.push(item),
        }
    }
    named.sort_by_key(|(i, _)| *i);
    let rank = |v: &Value| key_of(v, merge_key).and_then(|k| position(server, k));
    let mut out = Vec::with_capacity(named.len() + others.len());
    let mut left = others.into_iter().peekable();
    let mut right = named.into_iter().map(|(_, v)| v).peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => matches!((rank(l), rank(r)), (Some(a), Some(b)) if a < b),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::patch::strategic::tests::{check, check_errors};
    use serde_json::{json, Value};

    fn deployment(containers: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "nginx",
                "namespace": "default",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"old\":1}\n"}
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": containers, "restartPolicy": "Always"}
                }
            }
        })
    }

    fn pod_spec(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn what_kubectl_apply_sends() {
        let nginx =
            json!({"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}]});
        let mut second = deployment(
            json!([{"name": "nginx", "image": "nginx:1.28", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]),
        );
        second["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json!("{\"new\":1}\n");
        second["spec"]["replicas"] = json!(3);
        let with_443 = deployment(
            json!([{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]}]),
        );
        check(&[
            (
                "second apply: new image and replicas, ports kept, no directive stored",
                "Deployment",
                deployment(json!([nginx.clone()])),
                json!({"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"new\":1}\n"}},"spec":{"replicas":3,"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":[{"image":"nginx:1.28","name":"nginx"}]}}}}),
                second,
            ),
            (
                "apply adding a port inside the container",
                "Deployment",
                deployment(json!([nginx.clone()])),
                json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":[{"$setElementOrder/ports":[{"containerPort":80},{"containerPort":443}],"name":"nginx","ports":[{"containerPort":443}]}]}}}}),
                with_443,
            ),
            (
                "apply removing a container",
                "Deployment",
                deployment(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])),
                json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"$patch":"delete","name":"b"}]}}}}),
                deployment(json!([{"name": "a", "image": "a"}])),
            ),
            (
                "apply removing an env var and a field",
                "Deployment",
                deployment(
                    json!([{"name": "a", "image": "a", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "args": ["x"]}]),
                ),
                json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"$setElementOrder/env":[{"name":"A"}],"args":null,"env":[{"$patch":"delete","name":"B"}],"name":"a"}]}}}}),
                deployment(json!([{"name": "a", "image": "a", "env": [{"name": "A", "value": "1"}]}])),
            ),
            (
                "apply switching a volume's source with $retainKeys",
                "Pod",
                pod_spec(
                    json!({"volumes": [{"name": "v", "configMap": {"name": "c"}}, {"name": "w", "emptyDir": {}}]}),
                ),
                json!({"spec":{"$setElementOrder/volumes":[{"name":"v"},{"name":"w"}],"volumes":[{"$retainKeys":["name","secret"],"name":"v","secret":{"secretName":"s"}}]}}),
                pod_spec(
                    json!({"volumes": [{"name": "v", "secret": {"secretName": "s"}}, {"name": "w", "emptyDir": {}}]}),
                ),
            ),
            (
                "a template added whole: its lists are built and directives stripped",
                "Deployment",
                json!({"spec": {"replicas": 1}}),
                json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],"containers":[{"name":"b"},{"name":"a","ports":[{"containerPort":1,"$patch":"delete"},{"containerPort":2}]}]}}}}),
                json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "b"}, {"name": "a", "ports": [{"containerPort": 2}]}]}}}}),
            ),
        ]);
    }

    #[test]
    fn keyed_lists() {
        let containers = |c: Value| pod_spec(json!({"containers": c}));
        check(&[
            (
                "merge by name keeps the item's other fields",
                "Pod",
                containers(
                    json!([{"name": "a", "image": "x", "ports": [{"containerPort": 80}]}, {"name": "b", "image": "y"}]),
                ),
                json!({"spec": {"containers": [{"name": "a", "image": "z"}]}}),
                containers(
                    json!([{"name": "a", "image": "z", "ports": [{"containerPort": 80}]}, {"name": "b", "image": "y"}]),
                ),
            ),
            (
                "without $setElementOrder a new item goes before the unmatched ones (upstream)",
                "Pod",
                containers(json!([{"name": "a"}, {"name": "b"}])),
                json!({"spec": {"containers": [{"name": "c"}]}}),
                containers(json!([{"name": "c"}, {"name": "a"}, {"name": "b"}])),
            ),
            (
                "with $setElementOrder a new item goes where the order says",
                "Pod",
                containers(json!([{"name": "a"}, {"name": "b"}])),
                json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "containers": [{"name": "c"}]}}),
                containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
            ),
            (
                "the patch's order wins over the original's (upstream case)",
                "Pod",
                containers(json!([{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}])),
                json!({"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}, {"name": "2", "tty": true}]}}),
                containers(
                    json!([{"name": "3", "image": "c"}, {"name": "1", "image": "a"}, {"name": "2", "image": "b", "tty": true}]),
                ),
            ),
            (
                "unmatched items keep their place before later patch items (upstream case)",
                "Pod",
                containers(json!([{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}])),
                json!({"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}}),
                containers(
                    json!([{"name": "2", "image": "b"}, {"name": "3", "image": "c"}, {"name": "1", "image": "a"}]),
                ),
            ),
            (
                "$setElementOrder places new and kept items (upstream case)",
                "Pod",
                containers(json!([{"name": "1"}, {"name": "2", "image": "2"}])),
                json!({"spec": {"$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}], "containers": [{"name": "4", "image": "4"}, {"name": "3", "image": "3"}]}}),
                containers(
                    json!([{"name": "4", "image": "4"}, {"name": "1"}, {"name": "2", "image": "2"}, {"name": "3", "image": "3"}]),
                ),
            ),
            (
                "$setElementOrder naming an absent item (upstream case)",
                "Pod",
                containers(json!([{"name": "1"}, {"name": "3"}])),
                json!({"spec": {"$setElementOrder/containers": [{"name": "3"}, {"name": "2"}, {"name": "1"}], "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]}}),
                containers(json!([{"name": "3", "image": "3"}, {"name": "1", "image": "1"}])),
            ),
            (
                "$setElementOrder alone reorders; an unnamed item goes before named ones it preceded",
                "Pod",
                containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
                json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}]}}),
                containers(json!([{"name": "b"}, {"name": "c"}, {"name": "a"}])),
            ),
            (
                "$setElementOrder for an absent list adds nothing",
                "Pod",
                pod_spec(json!({})),
                json!({"spec": {"$setElementOrder/initContainers": [{"name": "x"}]}}),
                pod_spec(json!({})),
            ),
            (
                "$patch: delete removes every item with the key (upstream case)",
                "Pod",
                containers(
                    json!([{"name": "1"}, {"name": "1"}, {"name": "2", "image": "a"}, {"name": "3"}, {"name": "3"}]),
                ),
                json!({"spec": {"containers": [{"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}]}}),
                containers(json!([{"name": "2", "image": "a"}])),
            ),
            (
                "$patch: delete of an absent item is a no-op",
                "Pod",
                containers(json!([{"name": "a"}])),
                json!({"spec": {"containers": [{"name": "zz", "$patch": "delete"}]}}),
                containers(json!([{"name": "a"}])),
            ),
            (
                "a list holding {$patch: replace} is replaced (upstream case)",
                "Pod",
                containers(json!([{"name": "1"}, {"name": "2"}])),
                json!({"spec": {"containers": [{"$patch": "replace"}]}}),
                containers(json!([])),
            ),
            (
                "replace keeps the other patch items, in order",
                "Pod",
                containers(json!([{"name": "1", "image": "x"}, {"name": "2"}])),
                json!({"spec": {"containers": [{"name": "3", "env": [{"name": "E", "value": null}]}, {"$patch": "replace"}, {"name": "1"}]}}),
                containers(json!([{"name": "3", "env": [{"name": "E"}]}, {"name": "1"}])),
            ),
            (
                "null inside a keyed item deletes that field of the item",
                "Pod",
                containers(json!([{"name": "a", "image": "x", "tty": true}])),
                json!({"spec": {"containers": [{"name": "a", "tty": null}]}}),
                containers(json!([{"name": "a", "image": "x"}])),
            ),
            (
                "container ports merge by containerPort, numbers by value",
                "Pod",
                containers(
                    json!([{"name": "a", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 81}]}]),
                ),
                json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80.0, "hostPort": 8080}]}]}}),
                containers(
                    json!([{"name": "a", "ports": [{"containerPort": 80.0, "name": "http", "hostPort": 8080}, {"containerPort": 81}]}]),
                ),
            ),
            (
                "env merges by name, volumeMounts by mountPath",
                "Pod",
                containers(
                    json!([{"name": "a", "env": [{"name": "A", "value": "1"}], "volumeMounts": [{"mountPath": "/d", "name": "v"}]}]),
                ),
                json!({"spec": {"containers": [{"name": "a", "env": [{"name": "A", "value": "2"}], "volumeMounts": [{"mountPath": "/d", "readOnly": true}]}]}}),
                containers(
                    json!([{"name": "a", "env": [{"name": "A", "value": "2"}], "volumeMounts": [{"mountPath": "/d", "name": "v", "readOnly": true}]}]),
                ),
            ),
            (
                "service ports merge by port",
                "Service",
                json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}),
                json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
                json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}}),
            ),
            (
                "status conditions merge by type",
                "Pod",
                json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}}),
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]}}),
            ),
            (
                "ownerReferences merge by uid",
                "ReplicaSet",
                json!({"metadata": {"ownerReferences": [{"uid": "u1", "name": "d", "controller": true}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "u1", "blockOwnerDeletion": true}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "u1", "name": "d", "controller": true, "blockOwnerDeletion": true}]}}),
            ),
            (
                "an empty patch list merges to the original",
                "Pod",
                containers(json!([{"name": "a"}])),
                json!({"spec": {"containers": []}}),
                containers(json!([{"name": "a"}])),
            ),
        ]);
    }

    #[test]
    fn sets_of_scalars() {
        let fin = |f: Value| json!({"metadata": {"name": "s", "finalizers": f}});
        check(&[
            (
                "union, each value once (upstream case)",
                "Secret",
                fin(json!(["a", "b"])),
                json!({"metadata": {"finalizers": ["b", "c"]}}),
                fin(json!(["a", "b", "c"])),
            ),
            (
                "a new value goes first without an order (upstream)",
                "Secret",
                fin(json!(["a", "b"])),
                json!({"metadata": {"finalizers": ["c"]}}),
                fin(json!(["c", "a", "b"])),
            ),
            (
                "the patch's order wins (upstream case)",
                "Secret",
                fin(json!([1, 2, 3])),
                json!({"metadata": {"finalizers": [3, 1]}}),
                fin(json!([2, 3, 1])),
            ),
            (
                "$deleteFromPrimitiveList removes every copy (upstream case)",
                "Secret",
                fin(json!([1, 2, 3, 3, 4])),
                json!({"metadata": {"$setElementOrder/finalizers": [1, 2], "$deleteFromPrimitiveList/finalizers": [3]}}),
                fin(json!([1, 2, 4])),
            ),
            (
                "add and delete together (upstream case)",
                "Secret",
                fin(json!([1, 2, 3])),
                json!({"metadata": {"$setElementOrder/finalizers": [1, 2, 4], "$deleteFromPrimitiveList/finalizers": [3], "finalizers": [4]}}),
                fin(json!([1, 2, 4])),
            ),
            (
                "order naming an absent value (upstream case)",
                "Secret",
                fin(json!([1, 3])),
                json!({"metadata": {"$setElementOrder/finalizers": [3, 2, 1]}}),
                fin(json!([3, 1])),
            ),
            (
                "replace marker",
                "Secret",
                fin(json!(["a", "b"])),
                json!({"metadata": {"finalizers": [{"$patch": "replace"}, "c", "c"]}}),
                fin(json!(["c"])),
            ),
            (
                "delete from an absent list adds nothing",
                "Secret",
                json!({"metadata": {}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
                json!({"metadata": {}}),
            ),
            (
                "set in a pod template's metadata",
                "Deployment",
                json!({"spec": {"template": {"metadata": {"finalizers": ["a"]}}}}),
                json!({"spec": {"template": {"metadata": {"finalizers": ["a", "b"]}}}}),
                json!({"spec": {"template": {"metadata": {"finalizers": ["a", "b"]}}}}),
            ),
        ]);
    }

    #[test]
    fn atomic_lists_are_replaced() {
        check(&[
            (
                "args are replaced",
                "Pod",
                pod_spec(json!({"containers": [{"name": "a", "args": ["1", "2"]}]})),
                json!({"spec": {"containers": [{"name": "a", "args": ["3"]}]}}),
                pod_spec(json!({"containers": [{"name": "a", "args": ["3"]}]})),
            ),
            (
                "tolerations (objects, no merge key) are replaced",
                "Pod",
                pod_spec(json!({"tolerations": [{"key": "a"}, {"key": "b"}]})),
                json!({"spec": {"tolerations": [{"key": "c", "value": null}]}}),
                pod_spec(json!({"tolerations": [{"key": "c"}]})),
            ),
            (
                "a kind the table does not know: lists replaced whole",
                "Widget",
                json!({"spec": {"containers": [{"name": "a", "image": "x"}]}}),
                json!({"spec": {"containers": [{"name": "a", "image": "y"}]}}),
                json!({"spec": {"containers": [{"name": "a", "image": "y"}]}}),
            ),
            (
                "$setElementOrder of an atomic list is ignored, never stored",
                "Pod",
                pod_spec(json!({"tolerations": [{"key": "a"}]})),
                json!({"spec": {"$setElementOrder/tolerations": [{"key": "b"}], "tolerations": [{"key": "b"}, {"$patch": "replace"}]}}),
                pod_spec(json!({"tolerations": [{"key": "b"}]})),
            ),
            (
                "a list replaces a value of another type",
                "Pod",
                json!({"spec": {"containers": "oops"}}),
                json!({"spec": {"containers": [{"name": "a"}]}}),
                json!({"spec": {"containers": [{"name": "a"}]}}),
            ),
            (
                "$deleteFromPrimitiveList on an atomic list removes the values",
                "Pod",
                pod_spec(json!({"containers": [{"name": "a", "args": ["1", "2", "1"]}]})),
                json!({"spec": {"containers": [{"name": "a", "$deleteFromPrimitiveList/args": ["1"]}]}}),
                pod_spec(json!({"containers": [{"name": "a", "args": ["2"]}]})),
            ),
        ]);
    }

    #[test]
    fn malformed_list_patches_are_errors() {
        let pod = pod_spec(json!({"containers": [{"name": "a"}, {"name": "b"}]}));
        check_errors(&[
            (
                "item without merge key (upstream case)",
                "Pod",
                pod.clone(),
                json!({"spec": {"containers": [{"image": "b"}]}}),
                "is merged by key \"name\", but this item has no \"name\"",
            ),
            (
                "null merge key",
                "Pod",
                pod.clone(),
                json!({"spec": {"containers": [{"name": null}]}}),
                "has no \"name\"",
            ),
            (
                "delete without merge key",
                "Pod",
                pod.clone(),
                json!({"spec": {"containers": [{"$patch": "delete"}]}}),
                "has no \"name\"",
            ),
            (
                "bad $patch in an item",
                "Pod",
                pod.clone(),
                json!({"spec": {"containers": [{"name": "a", "$patch": "remove"}]}}),
                "\"remove\" is not \"replace\", \"delete\" or \"merge\"",
            ),
            (
                "scalar in a keyed list",
                "Pod",
                pod.clone(),
                json!({"spec": {"containers": ["a"]}}),
                "its items must be objects",
            ),
            (
                "object in a set",
                "Secret",
                json!({"metadata": {"finalizers": ["a"]}}),
                json!({"metadata": {"finalizers": [{"a": 1}]}}),
                "set of scalars",
            ),
            (
                "delete in a set",
                "Secret",
                json!({"metadata": {"finalizers": ["a"]}}),
                json!({"metadata": {"finalizers": [{"$patch": "delete"}]}}),
                "only \"replace\" is allowed",
            ),
            (
                "delete in an atomic list",
                "Pod",
                pod_spec(json!({"tolerations": []})),
                json!({"spec": {"tolerations": [{"key": "a", "$patch": "delete"}]}}),
                "replaced whole",
            ),
            (
                "order that contradicts the patch list (upstream case)",
                "Pod",
                pod_spec(json!({"containers": [{"name": "1"}, {"name": "3"}, {"name": "2"}]})),
                json!({"spec": {"$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}], "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]}}),
                "doesn't match",
            ),
            (
                "order that contradicts the patch list of scalars (upstream case)",
                "Secret",
                json!({"metadata": {"finalizers": [1, 3, 2]}}),
                json!({"metadata": {"$setElementOrder/finalizers": [1, 2, 3], "finalizers": [3, 1]}}),
                "doesn't match",
            ),
            (
                "order missing a patch item",
                "Pod",
                pod.clone(),
                json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "c"}]}}),
                "\"c\" is missing",
            ),
            (
                "order not a list",
                "Pod",
                pod.clone(),
                json!({"spec": {"$setElementOrder/containers": {"name": "a"}}}),
                "invalid $setElementOrder/containers at spec.containers: must be a list",
            ),
            (
                "order item without key",
                "Pod",
                pod.clone(),
                json!({"spec": {"$setElementOrder/containers": [{"image": "a"}]}}),
                "has no \"name\"",
            ),
            (
                "order item not an object",
                "Pod",
                pod.clone(),
                json!({"spec": {"$setElementOrder/containers": ["a"]}}),
                "must be objects holding \"name\"",
            ),
            (
                "delete-from on a keyed list",
                "Pod",
                pod.clone(),
                json!({"spec": {"$deleteFromPrimitiveList/containers": ["a"]}}),
                "{\"$patch\": \"delete\"} instead",
            ),
            (
                "delete-from not a list",
                "Secret",
                json!({"metadata": {"finalizers": ["a"]}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
                "must be a list",
            ),
            (
                "unknown directive inside an item",
                "Pod",
                pod,
                json!({"spec": {"containers": [{"name": "a", "$setElementOrdr/env": []}]}}),
                "unknown patch directive \"$setElementOrdr/env\" at spec.containers",
            ),
        ]);
    }
}
