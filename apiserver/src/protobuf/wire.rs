//! Protobuf wire format primitives: a bounds-checked reader over a byte slice (varints,
//! fixed32/64, length-delimited fields, tags, skipping unknown fields).
//!
//! Every read checks bounds and reports the absolute byte offset of the problem.

use super::ProtobufError;

/// Wire type 0: varint.
pub const VARINT: u8 = 0;
/// Wire type 1: 8 little-endian bytes.
pub const FIXED64: u8 = 1;
/// Wire type 2: varint length then that many bytes.
pub const LEN: u8 = 2;
/// Wire type 5: 4 little-endian bytes.
pub const FIXED32: u8 = 5;

/// A cursor over a protobuf-encoded message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the whole request body, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at offset `base` of the request body.
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Reads a base-128 varint (at most 10 bytes).
    pub fn varint(&mut self) -> Result<u64, ProtobufError> {
        let start = self.offset();
        let mut value: u64 = 0;
        for i in 0..10u32 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(ProtobufError::Truncated { what: "varint", offset: start });
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(ProtobufError::VarintOverflow { offset: start });
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::VarintOverflow { offset: start })
    }

    /// Reads a field key: `(field number, wire type)`.
    pub fn tag(&mut self) -> Result<(u32, u8), ProtobufError> {
        let offset = self.offset();
        let key = self.varint()?;
        let num = key >> 3;
        let wire_type = (key & 7) as u8;
        match u32::try_from(num) {
            Ok(num) if num != 0 && num < (1 << 29) => Ok((num, wire_type)),
            _ => Err(ProtobufError::BadFieldNumber { num, offset }),
        }
    }

    /// Reads `n` raw bytes.
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtobufError> {
        let start = self.offset();
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(ProtobufError::Truncated { what, offset: start })?;
        let bytes = self.buf.get(self.pos..end).ok_or(ProtobufError::Truncated { what, offset: start })?;
        self.pos = end;
        Ok(bytes)
    }

    /// Reads a length-delimited payload; returns it with its absolute offset.
    pub fn bytes(&mut self) -> Result<(&'a [u8], usize), ProtobufError> {
        let start = self.offset();
        let len = self.varint()?;
        let len = usize::try_from(len)
            .map_err(|_| ProtobufError::Truncated { what: "length-delimited field", offset: start })?;
        let offset = self.offset();
        let bytes = self.take(len, "length-delimited field")?;
        Ok((bytes, offset))
    }

    /// Reads 4 little-endian bytes.
    pub fn fixed32(&mut self) -> Result<u32, ProtobufError> {
        let b = self.take(4, "fixed32")?;
        let arr: [u8; 4] =
            b.try_into().map_err(|_| ProtobufError::Truncated { what: "fixed32", offset: self.offset() })?;
        Ok(u32::from_le_bytes(arr))
    }

    /// Reads 8 little-endian bytes.
    pub fn fixed64(&mut self) -> Result<u64, ProtobufError> {
        let b = self.take(8, "fixed64")?;
        let arr: [u8; 8] =
            b.try_into().map_err(|_| ProtobufError::Truncated { what: "fixed64", offset: self.offset() })?;
        Ok(u64::from_le_bytes(arr))
    }

    /// Skips a value of the given wire type (an unknown field).
    pub fn skip(&mut self, wire_type: u8) -> Result<(), ProtobufError> {
        let offset = self.offset();
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.fixed32().map(drop),
            _ => Err(ProtobufError::BadWireType { wire_type, offset }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut r = Reader::new(&[0x96, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 0);
        assert_eq!(r.varint().ok(), Some(150));
        assert_eq!(r.varint().ok(), Some(0));
        assert_eq!(r.varint().ok(), Some(u64::MAX));
        assert!(r.is_empty());
    }

    #[test]
    fn varint_errors() {
        let mut r = Reader::new(&[0x80, 0x80], 17);
        assert_eq!(r.varint().err().map(|e| e.to_string()).as_deref(), Some("truncated varint at byte 17"));
        let mut r = Reader::new(&[0xff; 11], 0);
        assert!(matches!(r.varint(), Err(ProtobufError::VarintOverflow { .. })));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 0);
        assert!(matches!(r.varint(), Err(ProtobufError::VarintOverflow { .. })));
    }

    #[test]
    fn length_delimited() {
        let mut r = Reader::new(&[0x03, b'a', b'b', b'c', 0x05, b'x'], 10);
        assert_eq!(r.bytes().ok(), Some((&b"abc"[..], 11)));
        assert!(matches!(r.bytes(), Err(ProtobufError::Truncated { offset: 15, .. })));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 0);
        assert!(matches!(r.bytes(), Err(ProtobufError::Truncated { .. })));
    }

    #[test]
    fn fixed_and_skip() {
        let mut r = Reader::new(&[1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0], 0);
        assert_eq!(r.fixed32().ok(), Some(1));
        assert_eq!(r.fixed64().ok(), Some(2));
        let mut r = Reader::new(&[0x0b], 0);
        assert!(matches!(r.tag(), Ok((1, 3))));
        assert!(matches!(r.skip(3), Err(ProtobufError::BadWireType { wire_type: 3, .. })));
        let mut r = Reader::new(&[0x00], 0);
        assert!(matches!(r.tag(), Err(ProtobufError::BadFieldNumber { num: 0, .. })));
    }
}
