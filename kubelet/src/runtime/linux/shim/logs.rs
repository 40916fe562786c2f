//! Container logs in the CRI format, one line per record:
//! `<RFC 3339 nanos> <stdout|stderr> <F|P> <text>` — `F` ends a line, `P` is a part of a line
//! longer than the buffer (the reader joins the parts), as containerd writes them.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
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

/// Size-based rotation of a container's log, as upstream's container log manager does it
/// (`--container-log-max-size`, `--container-log-max-files`): when the next record would take
/// the file past `max_size`, it is renamed `<log>.<YYYYMMDD-HHMMSS>` and a new one started; at
/// most `max_files` files are kept, the current one included. `kubectl logs` reads the current
/// file, as upstream's. (Upstream also gzips all but the newest rotated file; these stay plain.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes; 0: never rotate.
    pub max_size: u64,
    pub max_files: u32,
}

struct LogFile {
    path: Option<PathBuf>,
    file: File,
    size: u64,
    rotation: Rotation,
}

/// The log file shared by a container's stdout and stderr copiers.
#[derive(Clone)]
pub struct CriLogWriter {
    file: Arc<Mutex<LogFile>>,
}

/// The rotated files of the log at `path`, oldest first (their names sort by age: see
/// [`LogFile::rotate`]).
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

impl LogFile {
    /// Renames the log `<log>.<YYYYMMDD-HHMMSS>` (upstream's name), or, when that would not
    /// sort after every rotated file already there (several rotations in one second),
    /// `<log>.<YYYYMMDD-HHMMSS>.<NNNN>` with the next number; starts a new log and removes the
    /// oldest rotated files beyond `max_files - 1`.
    fn rotate(&mut self) -> io::Result<()> {
        let Some(path) = self.path.clone() else { return Ok(()) };
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("0.log").to_string();
        let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
        let base = format!("{name}.{stamp}");
        let newest = rotated_files(&path).last().and_then(|p| p.file_name()?.to_str().map(str::to_string));
        let target_name = match newest {
            Some(n) if n.as_str() >= base.as_str() => {
                let seq = n.strip_prefix(&format!("{base}.")).and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
                format!("{base}.{:04}", seq + 1)
            }
            _ => base,
        };
        let target = path.with_file_name(target_name);
        std::fs::rename(&path, &target)?;
        self.file = OpenOptions::new().create(true).append(true).open(&path)?;
        self.size = 0;
        let keep = self.rotation.max_files.saturating_sub(1) as usize;
        let rotated = rotated_files(&path);
        for old in rotated.iter().take(rotated.len().saturating_sub(keep)) {
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }
}

impl CriLogWriter {
    pub fn new(file: File) -> Self {
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let rotation = Rotation { max_size: 0, max_files: 0 };
        CriLogWriter { file: Arc::new(Mutex::new(LogFile { path: None, file, size, rotation })) }
    }

    /// The log at `path` (appended to), rotated by `rotation`.
    pub fn open(path: &Path, rotation: Rotation) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(CriLogWriter {
            file: Arc::new(Mutex::new(LogFile { path: Some(path.to_path_buf()), file, size, rotation })),
        })
    }

    fn write_record(&self, stream: &str, partial: bool, text: &[u8]) -> io::Result<()> {
        let line = cri_line(&super::now_rfc3339(), stream, partial, text);
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let max = f.rotation.max_size;
        if max > 0 && f.size > 0 && f.size + line.len() as u64 > max {
            if let Err(e) = f.rotate() {
                eprintln!("{} rotate the log: {e}", super::now_rfc3339());
            }
        }
        f.file.write_all(&line)?;
        f.size += line.len() as u64;
        Ok(())
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
    fn logs_rotate_by_size_and_keep_max_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("0.log");
        let w = CriLogWriter::open(&path, Rotation { max_size: 400, max_files: 3 }).expect("open");
        let mut lines = LineBuffer::new("stdout");
        for i in 0..60 {
            lines.feed(&w, format!("line {i:03}\n").as_bytes()).expect("write");
        }
        let rotated = rotated_files(&path);
        assert_eq!(rotated.len(), 2, "two rotated files and the current one: {rotated:?}");
        let current = std::fs::read_to_string(&path).expect("read");
        assert!(current.len() <= 400, "{} bytes", current.len());
        assert!(current.trim_end().ends_with("line 059"), "{current}");
        // Every file holds whole records, and together the newest ones in order.
        let mut all = String::new();
        for f in rotated.iter().chain(std::iter::once(&path)) {
            let text = std::fs::read_to_string(f).expect("read");
            assert!(text.lines().all(|l| l.contains(" stdout F line ")), "{text}");
            all.push_str(&text);
        }
        let numbers: Vec<u32> = all.lines().filter_map(|l| l.rsplit(' ').next().and_then(|n| n.parse().ok())).collect();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        assert_eq!(numbers.last(), Some(&59));
        // Without a limit nothing rotates.
        let other = dir.path().join("1.log");
        let w = CriLogWriter::open(&other, Rotation { max_size: 0, max_files: 5 }).expect("open");
        for _ in 0..60 {
            lines.feed(&w, b"more\n").expect("write");
        }
        assert!(rotated_files(&other).is_empty());
    }

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
