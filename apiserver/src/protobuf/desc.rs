//! Descriptor types: a static table per protobuf message telling the decoder, for each field
//! number, the JSON name, the value type and how the field repeats.

/// How a field occurs in its message and how it maps to JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    /// Singular; a zero value (`""`, `0`, `false`) is omitted, like a Go `omitempty` non-pointer field.
    Opt,
    /// Singular; the value is kept even when zero (a Go pointer field, or a required one).
    Keep,
    /// `repeated`: a JSON array.
    Repeated,
    /// `map<string, V>`: a JSON object (entries are messages `{1: key, 2: value}`).
    Map,
    /// An embedded Go struct: the sub-message's fields are inlined into the parent JSON object.
    Inline,
}

/// The type of a field's value.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    String,
    /// Base64 (standard alphabet, padded) in JSON.
    Bytes,
    Int32,
    Int64,
    Bool,
    Message(&'static Message),
    /// `map<string, V>` with the given value type.
    Map(&'static Ty),
    /// meta/v1 Time `{1: seconds, 2: nanos}`: RFC3339 with seconds precision.
    Time,
    /// meta/v1 MicroTime: RFC3339 with microseconds.
    MicroTime,
    /// resource.Quantity `{1: string}`: the string.
    Quantity,
    /// intstr.IntOrString `{1: type, 2: intVal, 3: strVal}`: a JSON number or string.
    IntOrString,
    /// meta/v1 FieldsV1 `{1: raw}`: the raw bytes are JSON, embedded as is.
    FieldsV1,
}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub num: u32,
    /// JSON name (empty for [`Card::Inline`]).
    pub name: &'static str,
    pub ty: Ty,
    pub card: Card,
}

/// A message: its Go type name and its fields sorted by field number.
#[derive(Debug)]
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Message {
    /// The descriptor of field `num`, if the message has one.
    pub fn field(&self, num: u32) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        fields.binary_search_by_key(&num, |f| f.num).ok().and_then(|i| fields.get(i))
    }
}

pub const fn opt(num: u32, name: &'static str, ty: Ty) -> Field {
    Field { num, name, ty, card: Card::Opt }
}

pub const fn keep(num: u32, name: &'static str, ty: Ty) -> Field {
    Field { num, name, ty, card: Card::Keep }
}

pub const fn rep(num: u32, name: &'static str, ty: Ty) -> Field {
    Field { num, name, ty, card: Card::Repeated }
}

pub const fn map(num: u32, name: &'static str, ty: Ty) -> Field {
    Field { num, name, ty, card: Card::Map }
}

pub const fn inline(num: u32, ty: Ty) -> Field {
    Field { num, name: "", ty, card: Card::Inline }
}
