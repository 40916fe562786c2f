//! Descriptor-driven decoding of one protobuf message into a JSON object.
//!
//! Proto semantics: unknown field numbers are skipped, a repeated occurrence of a singular scalar
//! overwrites it, of a singular message merges into it. Zero values of [`Card::Opt`] fields are
//! omitted, as Go's `omitempty` does; a zero `Time` is omitted (Go marshals it as `null`).

use base64::Engine as _;
use serde_json::{Map, Value};

use super::desc::{Card, Field, Message, Ty};
use super::time::rfc3339;
use super::wire::{Reader, LEN, VARINT};
use super::ProtobufError;

/// Maximum nesting of messages (a PodTemplate inside a Job inside a CronJob is about 12 deep).
pub const MAX_DEPTH: usize = 64;

/// Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z).
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// Decodes `buf` (at absolute offset `base`) as `msg` into a new JSON object.
pub fn message(
    buf: &[u8],
    base: usize,
    msg: &'static Message,
    depth: usize,
) -> Result<Map<String, Value>, ProtobufError> {
    let mut out = Map::new();
    merge(buf, base, msg, depth, &mut out)?;
    Ok(out)
}

/// Decodes `buf` as `msg`, merging its fields into `out`.
fn merge(
    buf: &[u8],
    base: usize,
    msg: &'static Message,
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<(), ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep { max: MAX_DEPTH, offset: base });
    }
    let mut r = Reader::new(buf, base);
    while !r.is_empty() {
        let (num, wire_type) = r.tag()?;
        let Some(field) = msg.field(num) else {
            r.skip(wire_type)?;
            continue;
        };
        let ctx = Ctx { msg, field, depth };
        match (field.card, field.ty) {
            (Card::Inline, Ty::Message(inner)) => {
                let (b, off) = ctx.len(&mut r, wire_type)?;
                merge(b, off, inner, depth + 1, out)?;
            }
            (Card::Map, Ty::Map(value_ty)) => {
                let (b, off) = ctx.len(&mut r, wire_type)?;
                let (key, value) = ctx.map_entry(b, off, value_ty)?;
                let entry = out.entry(field.name).or_insert_with(|| Value::Object(Map::new()));
                match entry {
                    Value::Object(m) => {
                        m.insert(key, value);
                    }
                    other => *other = Value::Object(Map::from_iter([(key, value)])),
                }
            }
            (Card::Repeated, ty) => {
                let values = if wire_type == LEN && packable(ty) {
                    let (b, off) = r.bytes()?;
                    let mut packed = Reader::new(b, off);
                    let mut values = Vec::new();
                    while !packed.is_empty() {
                        values.push(ctx.value(&mut packed, VARINT, ty)?);
                    }
                    values
                } else {
                    vec![ctx.value(&mut r, wire_type, ty)?]
                };
                let entry = out.entry(field.name).or_insert_with(|| Value::Array(Vec::new()));
                match entry {
                    Value::Array(a) => a.extend(values),
                    other => *other = Value::Array(values),
                }
            }
            (Card::Opt | Card::Keep, Ty::Message(inner)) => {
                let (b, off) = ctx.len(&mut r, wire_type)?;
                if let Some(Value::Object(existing)) = out.get_mut(field.name) {
                    merge(b, off, inner, depth + 1, existing)?;
                } else {
                    let m = message(b, off, inner, depth + 1)?;
                    out.insert(field.name.to_owned(), Value::Object(m));
                }
            }
            (Card::Opt | Card::Keep, ty) => {
                let value = ctx.value(&mut r, wire_type, ty)?;
                if value.is_null() || (field.card == Card::Opt && omit_zero(ty) && is_zero(&value)) {
                    out.shift_remove(field.name);
                } else {
                    out.insert(field.name.to_owned(), value);
                }
            }
            (Card::Inline | Card::Map, _) => {
                return Err(ctx.bad(r.offset(), "descriptor table is inconsistent".into()));
            }
        }
    }
    Ok(())
}

/// Types that may use packed encoding when repeated.
fn packable(ty: Ty) -> bool {
    matches!(ty, Ty::Int32 | Ty::Int64 | Ty::Bool)
}

/// Types whose zero value Go's `omitempty` omits (IntOrString and Quantity are structs: never omitted).
fn omit_zero(ty: Ty) -> bool {
    matches!(ty, Ty::String | Ty::Bytes | Ty::Int32 | Ty::Int64 | Ty::Bool)
}

/// Whether a scalar JSON value is Go's zero value.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// The field being decoded, for wire-type checks and error messages.
struct Ctx {
    msg: &'static Message,
    field: &'static Field,
    depth: usize,
}

impl Ctx {
    fn bad(&self, offset: usize, reason: String) -> ProtobufError {
        ProtobufError::BadValue { message: self.msg.name, field: self.field.name, offset, reason }
    }

    fn expect(&self, r: &Reader<'_>, wire_type: u8, expected: u8) -> Result<(), ProtobufError> {
        if wire_type == expected {
            Ok(())
        } else {
            Err(ProtobufError::WrongWireType {
                message: self.msg.name,
                field: self.field.name,
                wire_type,
                expected,
                offset: r.offset(),
            })
        }
    }

    fn len<'a>(&self, r: &mut Reader<'a>, wire_type: u8) -> Result<(&'a [u8], usize), ProtobufError> {
        self.expect(r, wire_type, LEN)?;
        r.bytes()
    }

    fn varint(&self, r: &mut Reader<'_>, wire_type: u8) -> Result<u64, ProtobufError> {
        self.expect(r, wire_type, VARINT)?;
        r.varint()
    }

    fn string(&self, r: &mut Reader<'_>, wire_type: u8) -> Result<String, ProtobufError> {
        let (b, offset) = self.len(r, wire_type)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(ProtobufError::InvalidUtf8 { message: self.msg.name, field: self.field.name, offset }),
        }
    }

    /// Decodes one value of type `ty`; `Value::Null` means "absent" (a zero `Time`).
    fn value(&self, r: &mut Reader<'_>, wire_type: u8, ty: Ty) -> Result<Value, ProtobufError> {
        Ok(match ty {
            Ty::String => Value::String(self.string(r, wire_type)?),
            Ty::Bytes => {
                let (b, _) = self.len(r, wire_type)?;
                Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            // Truncation is proto semantics: int32 is sent sign-extended to 64 bits.
            Ty::Int32 => Value::from(self.varint(r, wire_type)? as i32),
            Ty::Int64 => Value::from(self.varint(r, wire_type)? as i64),
            Ty::Bool => Value::Bool(self.varint(r, wire_type)? != 0),
            Ty::Message(inner) => {
                let (b, off) = self.len(r, wire_type)?;
                Value::Object(message(b, off, inner, self.depth + 1)?)
            }
            Ty::Map(_) => {
                return Err(self.bad(r.offset(), "descriptor table is inconsistent".into()));
            }
            Ty::Time | Ty::MicroTime => {
                let (b, off) = self.len(r, wire_type)?;
                self.time(b, off, matches!(ty, Ty::MicroTime))?
            }
            Ty::Quantity => {
                let (b, off) = self.len(r, wire_type)?;
                let mut s = String::new();
                self.fields(b, off, |num, wt, r| {
                    if num == 1 {
                        s = self.string(r, wt)?;
                        return Ok(true);
                    }
                    Ok(false)
                })?;
                if s.is_empty() {
                    s.push('0');
                }
                Value::String(s)
            }
            Ty::IntOrString => {
                let (b, off) = self.len(r, wire_type)?;
                let (mut kind, mut int, mut string) = (0u64, 0i32, String::new());
                self.fields(b, off, |num, wt, r| {
                    match num {
                        1 => kind = self.varint(r, wt)?,
                        2 => int = self.varint(r, wt)? as i32,
                        3 => string = self.string(r, wt)?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                if kind == 1 {
                    Value::String(string)
                } else {
                    Value::from(int)
                }
            }
            Ty::FieldsV1 => {
                let (b, off) = self.len(r, wire_type)?;
                let mut value = Value::Null;
                self.fields(b, off, |num, wt, r| {
                    if num != 1 {
                        return Ok(false);
                    }
                    let (raw, raw_off) = self.len(r, wt)?;
                    value = serde_json::from_slice(raw)
                        .map_err(|e| self.bad(raw_off, format!("fieldsV1 is not JSON: {e}")))?;
                    Ok(true)
                })?;
                value
            }
        })
    }

    /// Decodes a meta/v1 Time or MicroTime message `{1: seconds, 2: nanos}`.
    fn time(&self, b: &[u8], off: usize, micros: bool) -> Result<Value, ProtobufError> {
        if b.is_empty() {
            return Ok(Value::Null);
        }
        let (mut seconds, mut nanos) = (0i64, 0i64);
        self.fields(b, off, |num, wt, r| {
            match num {
                1 => seconds = self.varint(r, wt)? as i64,
                2 => nanos = i64::from(self.varint(r, wt)? as i32),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if seconds == GO_ZERO_TIME && nanos == 0 {
            return Ok(Value::Null);
        }
        rfc3339(seconds, nanos, micros)
            .map(Value::String)
            .ok_or_else(|| self.bad(off, format!("time {seconds}s is outside years 0000-9999")))
    }

    /// Walks the fields of a small well-known message; `visit` returns false to skip a field.
    fn fields(
        &self,
        b: &[u8],
        off: usize,
        mut visit: impl FnMut(u32, u8, &mut Reader<'_>) -> Result<bool, ProtobufError>,
    ) -> Result<(), ProtobufError> {
        let mut r = Reader::new(b, off);
        while !r.is_empty() {
            let (num, wt) = r.tag()?;
            if !visit(num, wt, &mut r)? {
                r.skip(wt)?;
            }
        }
        Ok(())
    }

    /// Decodes a map entry `{1: key, 2: value}`; missing parts take their zero value.
    fn map_entry(&self, b: &[u8], off: usize, value_ty: &'static Ty) -> Result<(String, Value), ProtobufError> {
        let (mut key, mut value) = (String::new(), None);
        self.fields(b, off, |num, wt, r| {
            match num {
                1 => key = self.string(r, wt)?,
                2 => value = Some(self.value(r, wt, *value_ty)?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        let value = match value {
            Some(v) => v,
            None => match value_ty {
                Ty::Quantity => Value::String("0".into()),
                Ty::Message(_) => Value::Object(Map::new()),
                Ty::Int32 | Ty::Int64 | Ty::IntOrString => Value::from(0),
                Ty::Bool => Value::Bool(false),
                _ => Value::String(String::new()),
            },
        };
        Ok((key, value))
    }
}
