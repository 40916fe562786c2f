//! The `k8s\0` + `runtime.Unknown` envelope around every Kubernetes protobuf body:
//! `Unknown{1: TypeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType}`.

use super::wire::{Reader, LEN};
use super::ProtobufError;

/// The 4-byte prefix of a Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

/// The parsed envelope; `raw` is the object's own message, at `raw_offset` in the body.
#[derive(Debug, Default)]
pub struct Unknown<'a> {
    pub api_version: String,
    pub kind: String,
    pub raw: &'a [u8],
    pub raw_offset: usize,
    pub content_encoding: String,
    pub content_type: String,
}

const UNKNOWN: &str = "Unknown";
const TYPE_META: &str = "TypeMeta";

/// Splits `body` into its envelope parts.
pub fn parse(body: &[u8]) -> Result<Unknown<'_>, ProtobufError> {
    let rest = body.strip_prefix(MAGIC).ok_or(ProtobufError::MissingMagic)?;
    let mut env = Unknown { raw_offset: MAGIC.len(), ..Unknown::default() };
    let mut r = Reader::new(rest, MAGIC.len());
    while !r.is_empty() {
        let (num, wire_type) = r.tag()?;
        match num {
            1 => {
                let (b, off) = len(&mut r, wire_type, UNKNOWN, "typeMeta")?;
                let mut tm = Reader::new(b, off);
                while !tm.is_empty() {
                    let (num, wire_type) = tm.tag()?;
                    match num {
                        1 => env.api_version = string(&mut tm, wire_type, TYPE_META, "apiVersion")?,
                        2 => env.kind = string(&mut tm, wire_type, TYPE_META, "kind")?,
                        _ => tm.skip(wire_type)?,
                    }
                }
            }
            2 => (env.raw, env.raw_offset) = len(&mut r, wire_type, UNKNOWN, "raw")?,
            3 => env.content_encoding = string(&mut r, wire_type, UNKNOWN, "contentEncoding")?,
            4 => env.content_type = string(&mut r, wire_type, UNKNOWN, "contentType")?,
            _ => r.skip(wire_type)?,
        }
    }
    Ok(env)
}

fn len<'a>(
    r: &mut Reader<'a>,
    wire_type: u8,
    message: &'static str,
    field: &'static str,
) -> Result<(&'a [u8], usize), ProtobufError> {
    if wire_type != LEN {
        return Err(ProtobufError::WrongWireType { message, field, wire_type, expected: LEN, offset: r.offset() });
    }
    r.bytes()
}

fn string(
    r: &mut Reader<'_>,
    wire_type: u8,
    message: &'static str,
    field: &'static str,
) -> Result<String, ProtobufError> {
    let (b, offset) = len(r, wire_type, message, field)?;
    String::from_utf8(b.to_vec()).map_err(|_| ProtobufError::InvalidUtf8 { message, field, offset })
}
