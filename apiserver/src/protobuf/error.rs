//! The error type of the protobuf decoder. Messages name the problem and the byte offset in the
//! request body, so they can be returned to the client in a 400/415 Status as is.

/// Why a protobuf request body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("protobuf body is missing the k8s magic prefix")]
    MissingMagic,
    #[error("protobuf envelope has no apiVersion/kind")]
    MissingTypeMeta,
    #[error("kind {api_version} {kind} has no protobuf decoder")]
    UnknownKind { api_version: String, kind: String },
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    #[error("truncated {what} at byte {offset}")]
    Truncated { what: &'static str, offset: usize },
    #[error("varint longer than 64 bits at byte {offset}")]
    VarintOverflow { offset: usize },
    #[error("invalid field number {num} at byte {offset}")]
    BadFieldNumber { num: u64, offset: usize },
    #[error("unsupported wire type {wire_type} at byte {offset}")]
    BadWireType { wire_type: u8, offset: usize },
    #[error("field {message}.{field} has wire type {wire_type}, expected {expected} (byte {offset})")]
    WrongWireType { message: &'static str, field: &'static str, wire_type: u8, expected: u8, offset: usize },
    #[error("field {message}.{field} is not valid UTF-8 (byte {offset})")]
    InvalidUtf8 { message: &'static str, field: &'static str, offset: usize },
    #[error("invalid value for {message}.{field} at byte {offset}: {reason}")]
    BadValue { message: &'static str, field: &'static str, offset: usize, reason: String },
    #[error("protobuf messages nested deeper than {max} levels at byte {offset}")]
    TooDeep { max: usize, offset: usize },
}
