//! Container logs in the CRI format (`<RFC3339Nano> <stdout|stderr> <P|F> <text>`, one record per
//! line) turned into what `kubectl logs` prints, as upstream's kubelet does
//! (`pkg/kubelet/kuberuntime/logs/logs.go`, `ReadLogs` and its `logWriter`):
//!
//! - each record's text is written as is: a full (`F`) record keeps its newline, a partial (`P`)
//!   record loses it, so the partials of a long line and its final record join into one line;
//! - `timestamps` prefixes every record (partials included) with its time in RFC3339 with nine
//!   fractional digits and a space;
//! - records older than `since` are skipped;
//! - `limit_bytes` cuts the output after that many bytes (mid-line if need be) and ends it;
//! - `tail` keeps the last N records (lines of the file, partials counted) when not following;
//!   when following, the runtime starts the stream at the tail and the server writes on;
//! - a record that does not parse is skipped; Docker's JSON log lines are read too.
//!
//! Pure: bytes in, bytes out ([`Converter`]); the server feeds it the runtime's stream.

use std::collections::VecDeque;

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// One parsed log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub timestamp: Timestamp,
    pub stderr: bool,
    /// The text, with its newline for a full record, without it for a partial one.
    pub log: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("timestamp is not found")]
    NoTimestamp,
    #[error("unexpected timestamp format: {0}")]
    BadTimestamp(String),
    #[error("stream type is not found")]
    NoStream,
    #[error("unexpected stream type {0:?}")]
    BadStream(String),
    #[error("log tag is not found")]
    NoTag,
    #[error("not a Docker JSON log line: {0}")]
    Json(String),
}

/// Parses one CRI log line (with or without its trailing newline).
pub fn parse_cri(line: &[u8]) -> Result<Record, ParseError> {
    let (ts, rest) = split_space(line).ok_or(ParseError::NoTimestamp)?;
    let ts = std::str::from_utf8(ts).map_err(|e| ParseError::BadTimestamp(e.to_string()))?;
    let timestamp: Timestamp = ts.parse().map_err(|e: jiff::Error| ParseError::BadTimestamp(e.to_string()))?;
    let (stream, rest) = split_space(rest).ok_or(ParseError::NoStream)?;
    let stderr = match stream {
        b"stdout" => false,
        b"stderr" => true,
        other => return Err(ParseError::BadStream(String::from_utf8_lossy(other).into_owned())),
    };
    let (tags, text) = split_space(rest).ok_or(ParseError::NoTag)?;
    // Tags are `:`-separated; the first says partial (`P`) or full (`F`). Forward compatible.
    let partial = tags.split(|b| *b == b':').next() == Some(b"P");
    let mut log = text.to_vec();
    if partial && log.last() == Some(&b'\n') {
        log.pop();
    }
    Ok(Record { timestamp, stderr, log })
}

/// Parses one Docker `json-file` log line (`{"log":"…","stream":"stdout","time":"…"}`).
pub fn parse_docker_json(line: &[u8]) -> Result<Record, ParseError> {
    #[derive(serde::Deserialize)]
    struct JsonLog {
        #[serde(default)]
        log: String,
        #[serde(default)]
        stream: String,
        time: String,
    }
    let l: JsonLog = serde_json::from_slice(line).map_err(|e| ParseError::Json(e.to_string()))?;
    let timestamp: Timestamp = l.time.parse().map_err(|e: jiff::Error| ParseError::BadTimestamp(e.to_string()))?;
    Ok(Record { timestamp, stderr: l.stream == "stderr", log: l.log.into_bytes() })
}

fn split_space(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|c| *c == b' ')?;
    Some((&b[..i], &b[i + 1..]))
}

/// `time.RFC3339NanoFixed` in UTC: `2016-10-06T00:17:09.669794202Z`.
pub fn format_timestamp(ts: Timestamp) -> String {
    let z = ts.to_zoned(TimeZone::UTC);
    format!("{}.{:09}Z", z.strftime("%Y-%m-%dT%H:%M:%S"), z.subsec_nanosecond())
}

/// What a log read writes (upstream's `LogOptions` of the CRI logs package).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub tail: Option<u64>,
    pub follow: bool,
    pub since: Option<Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Cri,
    DockerJson,
}

impl Format {
    /// The format of a sample line, as upstream's `getParseFunc` picks it.
    fn of(line: &[u8]) -> Option<Format> {
        if parse_cri(line).is_ok() {
            Some(Format::Cri)
        } else if parse_docker_json(line).is_ok() {
            Some(Format::DockerJson)
        } else {
            None
        }
    }

    fn parse(self, line: &[u8]) -> Result<Record, ParseError> {
        match self {
            Format::Cri => parse_cri(line),
            Format::DockerJson => parse_docker_json(line),
        }
    }
}

/// Turns a stream of raw log bytes (in any chunking) into the bytes `kubectl logs` shows.
#[derive(Debug)]
pub struct Converter {
    opts: Options,
    /// Bytes of a line not yet complete.
    pending: Vec<u8>,
    format: Option<Format>,
    /// Without follow and with a tail: the last `tail` lines, written at the end.
    tail: Option<VecDeque<Vec<u8>>>,
    /// Bytes still allowed by `limit_bytes`.
    remain: Option<u64>,
    done: bool,
}

impl Converter {
    pub fn new(opts: Options) -> Converter {
        let tail = match (opts.tail, opts.follow) {
            (Some(n), false) => Some(VecDeque::with_capacity(usize::try_from(n.min(4096)).unwrap_or(4096))),
            _ => None,
        };
        let remain = opts.limit_bytes;
        Converter { opts, pending: Vec::new(), format: None, tail, remain, done: false }
    }

    /// Whether the output is complete (the byte limit was reached): stop reading.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Takes the next chunk of raw log bytes; returns what can be written now.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(i + 1);
            rest = tail;
            if self.pending.is_empty() {
                self.line(head, &mut out);
            } else {
                let mut line = std::mem::take(&mut self.pending);
                line.extend_from_slice(head);
                self.line(&line, &mut out);
            }
            if self.done {
                return out;
            }
        }
        self.pending.extend_from_slice(rest);
        out
    }

    /// The input ended: the tail (without follow) and an incomplete last line (upstream writes
    /// one when it is not following).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        let last = std::mem::take(&mut self.pending);
        if !last.is_empty() && !self.opts.follow {
            self.line(&last, &mut out);
        }
        if let Some(lines) = self.tail.take() {
            for l in lines {
                self.write(&l, &mut out);
                if self.done {
                    break;
                }
            }
        }
        self.done = true;
        out
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        match (&mut self.tail, self.opts.tail) {
            (Some(buf), Some(n)) => {
                if n == 0 {
                    return;
                }
                if buf.len() as u64 >= n {
                    buf.pop_front();
                }
                buf.push_back(line.to_vec());
            }
            _ => self.write(line, out),
        }
    }

    /// Parses one raw line and writes it as upstream's `logWriter.write`.
    fn write(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let format = match self.format {
            Some(f) => f,
            None => match Format::of(line) {
                Some(f) => {
                    self.format = Some(f);
                    f
                }
                None => {
                    tracing::debug!(line = %String::from_utf8_lossy(line), "unsupported log format; line skipped");
                    return;
                }
            },
        };
        let rec = match format.parse(line) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, line = %String::from_utf8_lossy(line), "unparsable log line skipped");
                return;
            }
        };
        if self.opts.since.is_some_and(|since| rec.timestamp < since) {
            return;
        }
        let mut text = Vec::with_capacity(rec.log.len() + 32);
        if self.opts.timestamps {
            text.extend_from_slice(format_timestamp(rec.timestamp).as_bytes());
            text.push(b' ');
        }
        text.extend_from_slice(&rec.log);
        if let Some(remain) = self.remain.as_mut() {
            let n = usize::try_from(*remain).unwrap_or(usize::MAX).min(text.len());
            out.extend_from_slice(&text[..n]);
            *remain -= n as u64;
            if *remain == 0 {
                self.done = true;
            }
        } else {
            out.extend_from_slice(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2016-10-06T00:17:09.669794202Z stdout P part one, \n\
                       2016-10-06T00:17:09.669794203Z stdout F part two\n\
                       2016-10-06T00:17:10.000000000Z stderr F oops\n\
                       2016-10-06T00:17:11.5Z stdout F last\n";

    fn run(opts: Options, chunks: &[&[u8]]) -> String {
        let mut c = Converter::new(opts);
        let mut out = Vec::new();
        for ch in chunks {
            out.extend(c.feed(ch));
            if c.done() {
                break;
            }
        }
        out.extend(c.finish());
        String::from_utf8(out).expect("utf-8")
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn parses_cri_lines() {
        let r = parse_cri(b"2016-10-06T00:17:09.669794202Z stdout P log content 1\n").expect("parse");
        assert_eq!(
            r,
            Record { timestamp: ts("2016-10-06T00:17:09.669794202Z"), stderr: false, log: b"log content 1".to_vec() }
        );
        let r = parse_cri(b"2016-10-06T00:17:09.669794203Z stderr F log content 2\n").expect("parse");
        assert!(r.stderr);
        assert_eq!(r.log, b"log content 2\n");
        // Extra tags after `:` are ignored; an empty full record is an empty line.
        assert_eq!(parse_cri(b"2016-10-06T00:17:09Z stdout F:x \n").expect("parse").log, b"\n");
        assert_eq!(parse_cri(b"nonsense"), Err(ParseError::NoTimestamp));
        assert!(matches!(parse_cri(b"notatime stdout F x"), Err(ParseError::BadTimestamp(_))));
        assert_eq!(parse_cri(b"2016-10-06T00:17:09Z stdin F x"), Err(ParseError::BadStream("stdin".into())));
        assert_eq!(parse_cri(b"2016-10-06T00:17:09Z stdout"), Err(ParseError::NoStream));
        assert_eq!(parse_cri(b"2016-10-06T00:17:09Z stdout F"), Err(ParseError::NoTag));
        let d = parse_docker_json(br#"{"log":"content 1\n","stream":"stderr","time":"2016-10-20T18:39:20.57606443Z"}"#)
            .expect("docker json");
        assert_eq!((d.stderr, d.log.as_slice()), (true, b"content 1\n".as_slice()));
    }

    #[test]
    fn timestamps_have_nine_fractional_digits() {
        assert_eq!(format_timestamp(ts("2016-10-06T00:17:11.5Z")), "2016-10-06T00:17:11.500000000Z");
        assert_eq!(format_timestamp(ts("2016-10-06T02:17:11+02:00")), "2016-10-06T00:17:11.000000000Z");
    }

    #[test]
    fn partial_records_join_and_streams_merge() {
        assert_eq!(run(Options::default(), &[LOG.as_bytes()]), "part one, part two\noops\nlast\n");
    }

    #[test]
    fn chunking_does_not_matter() {
        let bytes = LOG.as_bytes();
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(Options::default(), &singles), "part one, part two\noops\nlast\n");
        let sevens: Vec<&[u8]> = bytes.chunks(7).collect();
        assert_eq!(run(Options { tail: Some(2), ..Default::default() }, &sevens), "oops\nlast\n");
    }

    #[test]
    fn timestamps_prefix_every_record() {
        let out = run(Options { timestamps: true, ..Default::default() }, &[LOG.as_bytes()]);
        assert_eq!(
            out,
            "2016-10-06T00:17:09.669794202Z part one, 2016-10-06T00:17:09.669794203Z part two\n\
             2016-10-06T00:17:10.000000000Z oops\n\
             2016-10-06T00:17:11.500000000Z last\n"
        );
    }

    #[test]
    fn tail_counts_records() {
        let tail = |n| run(Options { tail: Some(n), ..Default::default() }, &[LOG.as_bytes()]);
        assert_eq!(tail(0), "");
        assert_eq!(tail(1), "last\n");
        assert_eq!(tail(3), "part two\noops\nlast\n", "the partial record before the tail is not part of it");
        assert_eq!(tail(10), "part one, part two\noops\nlast\n");
        // Following: the runtime already started at the tail; everything it sends is written.
        let follow = run(Options { tail: Some(1), follow: true, ..Default::default() }, &[LOG.as_bytes()]);
        assert_eq!(follow, "part one, part two\noops\nlast\n");
    }

    #[test]
    fn since_skips_older_records() {
        let since = Some(ts("2016-10-06T00:17:10Z"));
        assert_eq!(run(Options { since, ..Default::default() }, &[LOG.as_bytes()]), "oops\nlast\n");
    }

    #[test]
    fn limit_bytes_cuts_and_ends() {
        let limited = |n| run(Options { limit_bytes: Some(n), ..Default::default() }, &[LOG.as_bytes()]);
        assert_eq!(limited(4), "part");
        assert_eq!(limited(19), "part one, part two\n");
        assert_eq!(limited(21), "part one, part two\noo");
        let mut c = Converter::new(Options { limit_bytes: Some(3), ..Default::default() });
        assert_eq!(c.feed(LOG.as_bytes()), b"par");
        assert!(c.done());
        assert!(c.feed(LOG.as_bytes()).is_empty());
    }

    #[test]
    fn bad_lines_are_skipped_and_an_incomplete_last_line_is_written() {
        let input = "garbage\n2016-10-06T00:17:09Z stdout F one\nmore garbage\n2016-10-06T00:17:09Z stdout F two";
        assert_eq!(run(Options::default(), &[input.as_bytes()]), "one\ntwo");
        // While following, an incomplete line waits for the rest.
        let mut c = Converter::new(Options { follow: true, ..Default::default() });
        assert_eq!(c.feed(b"2016-10-06T00:17:09Z stdout F one\n2016-10-06T00:17:09Z std"), b"one\n");
        assert_eq!(c.feed(b"out F two\n"), b"two\n");
        assert!(c.finish().is_empty());
    }
}
