//! Container logs in the CRI format, one line per record:
//! `<RFC 3339 nanos> <stdout|stderr> <F|P> <text>` — `F` ends a line, `P` is a part of a line
//! longer than the buffer (the reader joins the parts), as containerd writes them.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

/// Longest part written as one record; a longer line is split into `P` records.
const MAX_RECORD: usize = 16 * 1024;

/// One CRI log record.
pub fn cri_line(timestamp: &str, stream: &str, partial: bool, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(timestamp.len() + stream.len() + text.len() + 5);
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(text);
    out.push(b'\n');
    out
}

/// The log file shared by a container's stdout and stderr copiers.
#[derive(Clone)]
pub struct CriLogWriter {
    file: Arc<Mutex<File>>,
}

impl CriLogWriter {
    pub fn new(file: File) -> Self {
        CriLogWriter { file: Arc::new(Mutex::new(file)) }
    }

    fn write_record(&self, stream: &str, partial: bool, text: &[u8]) -> io::Result<()> {
        let line = cri_line(&super::now_rfc3339(), stream, partial, text);
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(&line)
    }

    /// Copies `from` (a container's stdout or stderr) into the log until end of file.
    pub fn copy(&self, stream: &'static str, mut from: impl Read) -> io::Result<()> {
        let mut lines = LineBuffer::new(stream);
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => lines.feed(self, &buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        lines.finish(self)
    }
}

/// The part of one stream not yet written as a record: cuts what it is fed into `F` records at
/// newlines and `P` records at [`MAX_RECORD`] bytes.
pub struct LineBuffer {
    stream: &'static str,
    pending: Vec<u8>,
}

impl LineBuffer {
    pub fn new(stream: &'static str) -> Self {
        LineBuffer { stream, pending: Vec::new() }
    }

    pub fn is_stderr(&self) -> bool {
        self.stream == "stderr"
    }

    pub fn feed(&mut self, log: &CriLogWriter, data: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let mut line = &self.pending[start..start + nl];
            // A line longer than a record goes out as `P` parts and a final `F`.
            while line.len() > MAX_RECORD {
                log.write_record(self.stream, true, &line[..MAX_RECORD])?;
                line = &line[MAX_RECORD..];
            }
            log.write_record(self.stream, false, line)?;
            start += nl + 1;
        }
        self.pending.drain(..start);
        while self.pending.len() >= MAX_RECORD {
            log.write_record(self.stream, true, &self.pending[..MAX_RECORD])?;
            self.pending.drain(..MAX_RECORD);
        }
        Ok(())
    }

    /// The stream ended: what is left (without a newline) is still a whole line.
    pub fn finish(&mut self, log: &CriLogWriter) -> io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            log.write_record(self.stream, false, &rest)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_partials_and_the_unterminated_tail() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("0.log");
        let w = CriLogWriter::new(File::create(&path).expect("create"));
        let mut input = b"hello\nworld\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_RECORD + 10));
        input.extend_from_slice(b"\nlast");
        w.copy("stdout", &input[..]).expect("copy");
        let text = std::fs::read_to_string(&path).expect("read");
        let recs: Vec<(&str, &str, usize)> = text
            .lines()
            .map(|l| {
                let mut f = l.splitn(4, ' ');
                let ts = f.next().unwrap_or("");
                assert!(ts.ends_with('Z') && ts.len() == 30, "timestamp {ts}");
                let stream = f.next().unwrap_or("");
                assert_eq!(stream, "stdout");
                let tag = f.next().unwrap_or("");
                let body = f.next().unwrap_or("");
                (tag, if body.len() > 10 { "long" } else { body }, body.len())
            })
            .collect();
        assert_eq!(
            recs,
            vec![
                ("F", "hello", 5),
                ("F", "world", 5),
                ("P", "long", MAX_RECORD),
                ("F", "xxxxxxxxxx", 10),
                ("F", "last", 4)
            ]
        );
    }
}
