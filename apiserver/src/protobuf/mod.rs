//! Decoding of Kubernetes protobuf request bodies (`Content-Type: application/vnd.kubernetes.protobuf`)
//! into the JSON form of the object, as `kubectl create secret|configmap|namespace|deployment|job`
//! and client-go typed clients send them.
//!
//! A body is `k8s\0` + `runtime.Unknown` ([`envelope`]) whose `raw` bytes are the go-to-protobuf
//! message of the object. A hand-written wire reader ([`wire`]) walks those bytes driven by static
//! descriptor tables (field number → JSON name and type, one file per API group, e.g. [`core_v1`]),
//! producing exactly the JSON the Kubernetes API uses: camelCase names, Secret data in base64,
//! RFC 3339 timestamps, Quantity as a string, IntOrString as a number or string, maps as objects,
//! zero values of `omitempty` fields omitted. Unknown field numbers are skipped; malformed input
//! gives a [`ProtobufError`] naming the byte offset, never a panic.

mod decode;
mod desc;
mod envelope;
mod error;
mod kinds;
mod time;
mod wire;

mod apps_v1;
mod autoscaling_v1;
mod batch_v1;
mod coordination_v1;
mod core_v1;
mod discovery_v1;
mod meta_v1;
mod policy_v1;

#[cfg(test)]
mod tests;

pub use error::ProtobufError;

use serde_json::{Map, Value};

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Decodes a `k8s\0`-prefixed protobuf body into the object's JSON form, with "apiVersion" and "kind" set from TypeMeta.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let env = envelope::parse(body)?;
    if !env.content_encoding.is_empty() {
        return Err(ProtobufError::ContentEncoding(env.content_encoding));
    }
    if env.kind.is_empty() || env.api_version.is_empty() {
        return Err(ProtobufError::MissingTypeMeta);
    }
    let Some(msg) = kinds::lookup(&env.api_version, &env.kind) else {
        return Err(ProtobufError::UnknownKind { api_version: env.api_version, kind: env.kind });
    };
    let fields = decode::message(env.raw, env.raw_offset, msg, 0)?;
    let mut obj = Map::with_capacity(fields.len() + 2);
    obj.insert("apiVersion".into(), Value::String(env.api_version));
    obj.insert("kind".into(), Value::String(env.kind));
    obj.extend(fields);
    Ok(Value::Object(obj))
}
