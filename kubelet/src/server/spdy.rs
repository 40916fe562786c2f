//! The part of SPDY/3.1 that `kubectl port-forward` needs (k8s.io/apimachinery
//! `pkg/util/httpstream/spdy` over moby/spdystream): frames and name/value header blocks. Pure:
//! no I/O here.
//!
//! A frame is 8 bytes of header and a payload. Control frames: `1 | version(15) | type(16)`,
//! `flags(8) | length(24)`; data frames: `0 | stream id(31)`, `flags(8) | length(24)`. Header
//! blocks (SYN_STREAM, SYN_REPLY, HEADERS) are `count(32)` then `len(32) name len(32) value`
//! pairs, compressed with one zlib stream per direction and connection, flushed (sync) after
//! each block. The peer's stream starts with the SPDY/3 dictionary ([`DICTIONARY`]); ours uses
//! none (its zlib header says so, and Go's reader accepts that). spdystream does no flow
//! control, so WINDOW_UPDATE and SETTINGS are read and ignored.

use std::collections::BTreeMap;

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

pub const VERSION: u16 = 3;
pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const SETTINGS: u16 = 4;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const HEADERS: u16 = 8;
pub const WINDOW_UPDATE: u16 = 9;
/// FLAG_FIN on data and control frames.
pub const FLAG_FIN: u8 = 0x01;
/// RST_STREAM statuses used here.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_CANCEL: u32 = 5;
/// Largest payload of one frame (24-bit length).
pub const MAX_PAYLOAD: usize = (1 << 24) - 1;
/// Decompressed header bytes one connection may send in all (header blocks of port-forward are
/// a few dozen bytes per stream).
const MAX_HEADER_BYTES: usize = 1 << 20;
/// The deflate window: how much history back-references reach.
const WINDOW: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpdyError {
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("invalid {what} frame: {message}")]
    Invalid { what: &'static str, message: String },
    #[error("header block: {0}")]
    Headers(String),
}

fn invalid(what: &'static str, message: impl Into<String>) -> SpdyError {
    SpdyError::Invalid { what, message: message.into() }
}

/// Header names (lowercase) to values (a name may carry several, NUL-separated on the wire).
pub type HeaderMap = BTreeMap<String, Vec<String>>;

/// One frame as read (header blocks still compressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream: u32,
        flags: u8,
        data: Vec<u8>,
    },
    SynStream {
        stream: u32,
        flags: u8,
        block: Vec<u8>,
    },
    SynReply {
        stream: u32,
        flags: u8,
        block: Vec<u8>,
    },
    Headers {
        stream: u32,
        flags: u8,
        block: Vec<u8>,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_stream: u32,
        status: u32,
    },
    /// SETTINGS, WINDOW_UPDATE and unknown control frames.
    Ignored {
        kind: u16,
    },
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b1, c, d]) => u32::from_be_bytes([a, b1, c, d]),
        _ => 0,
    }
}

/// Parses one frame from the front of `buf`: `Ok(None)` until it is complete, else the frame
/// and how many bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, SpdyError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let first = u32_at(buf, 0);
    let flags = buf[4];
    let len = (u32_at(buf, 4) & 0x00ff_ffff) as usize;
    if buf.len() < 8 + len {
        return Ok(None);
    }
    let p = &buf[8..8 + len];
    let need = |what, n: usize| if p.len() < n { Err(invalid(what, format!("{} bytes", p.len()))) } else { Ok(()) };
    let frame = if first & 0x8000_0000 == 0 {
        Frame::Data { stream: first & 0x7fff_ffff, flags, data: p.to_vec() }
    } else {
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let kind = (first & 0xffff) as u16;
        match kind {
            SYN_STREAM => {
                need("SYN_STREAM", 10)?;
                Frame::SynStream { stream: u32_at(p, 0) & 0x7fff_ffff, flags, block: p[10..].to_vec() }
            }
            SYN_REPLY => {
                need("SYN_REPLY", 4)?;
                Frame::SynReply { stream: u32_at(p, 0) & 0x7fff_ffff, flags, block: p[4..].to_vec() }
            }
            HEADERS => {
                need("HEADERS", 4)?;
                Frame::Headers { stream: u32_at(p, 0) & 0x7fff_ffff, flags, block: p[4..].to_vec() }
            }
            RST_STREAM => {
                need("RST_STREAM", 8)?;
                Frame::RstStream { stream: u32_at(p, 0) & 0x7fff_ffff, status: u32_at(p, 4) }
            }
            PING => {
                need("PING", 4)?;
                Frame::Ping { id: u32_at(p, 0) }
            }
            GOAWAY => {
                need("GOAWAY", 8)?;
                Frame::GoAway { last_stream: u32_at(p, 0) & 0x7fff_ffff, status: u32_at(p, 4) }
            }
            other => Frame::Ignored { kind: other },
        }
    };
    Ok(Some((frame, 8 + len)))
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(payload);
    out
}

/// A DATA frame (`data` at most [`MAX_PAYLOAD`] bytes; callers send less).
pub fn data(stream: u32, fin: bool, data: &[u8]) -> Vec<u8> {
    let len = data.len().min(MAX_PAYLOAD);
    let mut out = Vec::with_capacity(8 + len);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.push(if fin { FLAG_FIN } else { 0 });
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&data[..len]);
    out
}

/// A SYN_REPLY with a compressed header block (`fin`: the stream is refused, as spdystream's
/// `SendReply(…, true)`).
pub fn syn_reply(stream: u32, fin: bool, block: &[u8]) -> Vec<u8> {
    let mut p = (stream & 0x7fff_ffff).to_be_bytes().to_vec();
    p.extend_from_slice(block);
    control(SYN_REPLY, if fin { FLAG_FIN } else { 0 }, &p)
}

pub fn rst_stream(stream: u32, status: u32) -> Vec<u8> {
    let mut p = (stream & 0x7fff_ffff).to_be_bytes().to_vec();
    p.extend_from_slice(&status.to_be_bytes());
    control(RST_STREAM, 0, &p)
}

pub fn ping(id: u32) -> Vec<u8> {
    control(PING, 0, &id.to_be_bytes())
}

pub fn goaway(last_stream: u32, status: u32) -> Vec<u8> {
    let mut p = (last_stream & 0x7fff_ffff).to_be_bytes().to_vec();
    p.extend_from_slice(&status.to_be_bytes());
    control(GOAWAY, 0, &p)
}

/// An uncompressed name/value block.
pub fn encode_block(headers: &HeaderMap) -> Vec<u8> {
    let mut out = (headers.len() as u32).to_be_bytes().to_vec();
    for (name, values) in headers {
        let value = values.join("\0");
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Reads an uncompressed name/value block (names lowercased, as spdystream does).
pub fn decode_block(b: &[u8]) -> Result<HeaderMap, SpdyError> {
    let err = |m: &str| SpdyError::Headers(m.to_string());
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], SpdyError> {
        let s = b.get(at..at.checked_add(n).ok_or_else(|| err("too long"))?).ok_or_else(|| err("truncated"))?;
        at += n;
        Ok(s)
    };
    let count = u32_at(take(4)?, 0);
    let mut out = HeaderMap::new();
    for _ in 0..count {
        let n = u32_at(take(4)?, 0) as usize;
        let name = String::from_utf8_lossy(take(n)?).to_lowercase();
        let n = u32_at(take(4)?, 0) as usize;
        let value = String::from_utf8_lossy(take(n)?).into_owned();
        out.entry(name).or_default().extend(value.split('\0').map(str::to_string));
    }
    Ok(out)
}

/// The first value of header `name`.
pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.first()).map(String::as_str)
}

/// Compresses the header blocks this side sends: one zlib stream, sync-flushed per block.
pub struct Compressor(flate2::Compress);

impl Default for Compressor {
    fn default() -> Self {
        Compressor(flate2::Compress::new(flate2::Compression::default(), true))
    }
}

impl Compressor {
    pub fn compress(&mut self, headers: &HeaderMap) -> Result<Vec<u8>, SpdyError> {
        let raw = encode_block(headers);
        let mut out = Vec::with_capacity(raw.len() + 64);
        let before = self.0.total_in();
        loop {
            let consumed = (self.0.total_in() - before) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            self.0
                .compress_vec(&raw[consumed..], &mut out, flate2::FlushCompress::Sync)
                .map_err(|e| SpdyError::Headers(e.to_string()))?;
            // Done once everything went in and the flush left room to spare.
            if (self.0.total_in() - before) as usize == raw.len() && out.capacity() > out.len() {
                return Ok(out);
            }
        }
    }
}

/// Decompresses the peer's header blocks: one zlib stream (with the SPDY/3 dictionary) over
/// the whole connection. The dictionary and the last 32 KiB of output stay in `history`, where
/// the deflate back-references reach.
pub struct Decompressor {
    inflate: Box<DecompressorOxide>,
    history: Vec<u8>,
    /// zlib header bytes still to skip (2, then 4 more when it names a dictionary).
    header: Vec<u8>,
    total: usize,
}

impl Default for Decompressor {
    fn default() -> Self {
        Decompressor { inflate: Box::default(), history: dictionary(), header: Vec::new(), total: 0 }
    }
}

impl Decompressor {
    /// The header block in one frame's compressed bytes.
    pub fn decompress(&mut self, mut input: &[u8]) -> Result<HeaderMap, SpdyError> {
        let err = |m: String| SpdyError::Headers(m);
        // The zlib header: CMF, FLG (and the dictionary's Adler-32 when FLG has FDICT).
        while self.header.len() < 2 || (self.header[1] & 0x20 != 0 && self.header.len() < 6) {
            let Some((&b, rest)) = input.split_first() else { return Err(err("truncated zlib header".into())) };
            self.header.push(b);
            input = rest;
            if self.header.len() == 2 && (u16::from(self.header[0]) << 8 | u16::from(self.header[1])) % 31 != 0 {
                return Err(err("bad zlib header".into()));
            }
        }
        if self.header.len() == 6 && u32_at(&self.header, 2) != adler32(&dictionary()) {
            return Err(err("the header block uses an unknown dictionary".into()));
        }
        let start = self.history.len();
        let flags = inflate_flags::TINFL_FLAG_HAS_MORE_INPUT | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        loop {
            let pos = self.history.len();
            self.history.resize(pos + 4096, 0);
            let (status, read, written) = decompress(&mut self.inflate, input, &mut self.history, pos, flags);
            self.history.truncate(pos + written);
            input = &input[read..];
            self.total += written;
            if self.total > MAX_HEADER_BYTES {
                return Err(err("too many header bytes".into()));
            }
            if read == 0 && written == 0 && status != TINFLStatus::HasMoreOutput && !input.is_empty() {
                return Err(err("inflate made no progress".into()));
            }
            match status {
                TINFLStatus::HasMoreOutput => continue,
                TINFLStatus::NeedsMoreInput | TINFLStatus::Done if input.is_empty() => break,
                TINFLStatus::NeedsMoreInput | TINFLStatus::Done => continue,
                other => return Err(err(format!("inflate: {other:?}"))),
            }
        }
        let block = decode_block(&self.history[start..]);
        if self.history.len() > 2 * WINDOW {
            self.history.drain(..self.history.len() - WINDOW);
        }
        block
    }
}

fn adler32(b: &[u8]) -> u32 {
    let (mut a, mut s) = (1u32, 0u32);
    for chunk in b.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            s += a;
        }
        a %= 65521;
        s %= 65521;
    }
    (s << 16) | a
}

/// Words of the SPDY/3 header dictionary, each preceded on the wire by its length (32 bits).
const DICTIONARY_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// What follows the words, as is.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1).
pub fn dictionary() -> Vec<u8> {
    let mut out = Vec::with_capacity(1423);
    for w in DICTIONARY_WORDS {
        out.extend_from_slice(&(w.len() as u32).to_be_bytes());
        out.extend_from_slice(w.as_bytes());
    }
    out.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.entry(k.to_string()).or_default().push(v.to_string());
        }
        h
    }

    #[test]
    fn the_dictionary_is_spdy3s() {
        let d = dictionary();
        assert_eq!(d.len(), 1423, "the SPDY/3 dictionary is 1423 bytes");
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert!(d.ends_with(b",*,enq=0."));
    }

    #[test]
    fn frames_round_trip() {
        let f = data(5, true, b"hello");
        assert_eq!(f, [0, 0, 0, 5, 1, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
        assert_eq!(parse(&f), Ok(Some((Frame::Data { stream: 5, flags: FLAG_FIN, data: b"hello".to_vec() }, 13))));
        assert_eq!(parse(&f[..12]), Ok(None), "an incomplete frame waits for more");
        let p = ping(7);
        assert_eq!(p, [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 7]);
        assert_eq!(parse(&p), Ok(Some((Frame::Ping { id: 7 }, 12))));
        assert_eq!(parse(&rst_stream(3, RST_CANCEL)), Ok(Some((Frame::RstStream { stream: 3, status: 5 }, 16))));
        assert_eq!(parse(&goaway(9, 0)), Ok(Some((Frame::GoAway { last_stream: 9, status: 0 }, 16))));
        let r = syn_reply(1, false, b"xyz");
        assert_eq!(parse(&r), Ok(Some((Frame::SynReply { stream: 1, flags: 0, block: b"xyz".to_vec() }, 15))));
        let mut v2 = ping(1);
        v2[1] = 2;
        assert_eq!(parse(&v2), Err(SpdyError::Version(2)));
        let short = control(RST_STREAM, 0, &[0, 0, 0, 1]);
        assert!(matches!(parse(&short), Err(SpdyError::Invalid { .. })));
        assert_eq!(parse(&control(WINDOW_UPDATE, 0, &[0; 8])), Ok(Some((Frame::Ignored { kind: 9 }, 16))));
    }

    #[test]
    fn syn_stream_is_parsed() {
        let mut payload = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        payload.extend_from_slice(b"block");
        let f = control(SYN_STREAM, FLAG_FIN, &payload);
        assert_eq!(
            parse(&f),
            Ok(Some((Frame::SynStream { stream: 1, flags: FLAG_FIN, block: b"block".to_vec() }, 8 + 15)))
        );
    }

    #[test]
    fn header_blocks_round_trip_through_one_zlib_stream() {
        let mut c = Compressor::default();
        let mut d = Decompressor::default();
        let a = headers(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]);
        let b = headers(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]);
        let ca = c.compress(&a).expect("compress");
        let cb = c.compress(&b).expect("compress");
        assert_eq!(ca[0], 0x78, "a zlib header starts the stream");
        assert_ne!(cb[0], 0x78, "the second block continues the same stream");
        assert_eq!(d.decompress(&ca).expect("a"), a);
        assert_eq!(d.decompress(&cb).expect("b"), b);
        assert_eq!(header(&a, "port"), Some("80"));
    }

    #[test]
    fn kubectls_header_blocks_decode() {
        // The first two SYN_STREAM header blocks of a `kubectl port-forward` (1.32): zlib with
        // the SPDY/3 dictionary (its Adler-32 in the header), one stream for both.
        let error = [
            120, 249, 227, 198, 167, 194, 2, 37, 58, 112, 58, 43, 41, 74, 77, 204, 133, 22, 37, 172, 169, 160, 128,
            134, 20, 203, 69, 160, 36, 204, 100, 97, 192, 192, 192, 192, 89, 4, 137, 196, 76, 80, 226, 102, 52, 0, 0,
            0, 0, 255, 255,
        ];
        let data = [130, 106, 37, 164, 6, 213, 104, 80, 41, 149, 8, 0, 0, 0, 255, 255];
        let mut d = Decompressor::default();
        let h = d.decompress(&error).expect("error stream headers");
        assert_eq!(header(&h, "streamtype"), Some("error"));
        assert_eq!(header(&h, "port"), Some("80"));
        assert_eq!(header(&h, "requestid"), Some("0"));
        let h = d.decompress(&data).expect("data stream headers");
        assert_eq!(header(&h, "streamtype"), Some("data"));
        assert_eq!(header(&h, "port"), Some("80"));
    }

    #[test]
    fn multiple_values_and_case() {
        let raw = {
            let mut v = 1u32.to_be_bytes().to_vec();
            v.extend_from_slice(&4u32.to_be_bytes());
            v.extend_from_slice(b"Port");
            v.extend_from_slice(&5u32.to_be_bytes());
            v.extend_from_slice(b"80\x0081");
            v
        };
        let h = decode_block(&raw).expect("decode");
        assert_eq!(h.get("port"), Some(&vec!["80".to_string(), "81".to_string()]));
        assert!(decode_block(&raw[..10]).is_err());
        assert!(decode_block(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn a_foreign_dictionary_is_refused() {
        let mut d = Decompressor::default();
        // CMF 0x78, FLG with FDICT (0xbb: 0x78bb % 31 == 0), then another dictionary's id.
        assert!(d.decompress(&[0x78, 0xbb, 0, 0, 0, 1, 0]).is_err());
        let mut d = Decompressor::default();
        assert!(d.decompress(&[0x78, 0x00]).is_err(), "a bad header check fails");
    }
}
