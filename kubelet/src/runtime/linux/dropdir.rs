//! Auto-import of image tarballs from the drop directory (`<data-dir>/agent/images/`, DESIGN
//! §10): every `*.tar`, `*.tar.gz` and `*.tar.zst` in it (docker-archive or OCI layout, the
//! compression told by the bytes) is imported at start ([`import_all`]) and when added or
//! replaced later ([`watch`]).
//!
//! What was imported is remembered in `<store>/dropdir.json` (the file's size and mtime and the
//! references it added): a file unchanged since, whose references the store still has, is not
//! imported again, so a restart costs a directory listing. A file that fails to import is logged
//! with the reason and skipped; it adds nothing, and it is tried again when it changes (or at
//! the next start). While a watch runs it looks at a file again only once it changed, so a
//! reference removed with `skiff images rm` stays removed; at the next start an archive whose
//! references are gone from the store is imported again (the directory is what the node has).
//!
//! The watcher follows the directory with inotify and imports a file once it is complete: when
//! its writer closes it (`IN_CLOSE_WRITE`) or it is renamed in (`IN_MOVED_TO`, the safe way to
//! drop a large file). Where inotify cannot be had, or the directory goes away, it polls every
//! 2 s and imports a file once its size and mtime held still for one interval.

use super::images::{ImageError, ImageStore};
use super::{io_err, IoError};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;
use tokio_util::sync::CancellationToken;

/// The suffixes of the files imported.
const ARCHIVE_SUFFIXES: [&str; 3] = [".tar", ".tar.gz", ".tar.zst"];
/// What was imported, in the store.
const MARKER: &str = "dropdir.json";
/// How often the directory is listed when inotify is not at hand.
const POLL_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum DropDirError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// The drop directory of a data directory: `<data-dir>/agent/images`.
pub fn drop_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("images")
}

/// What one pass over the drop directory did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The files imported, each with the references it added.
    pub imported: Vec<(PathBuf, Vec<String>)>,
    /// The files left alone: imported before and unchanged since.
    pub unchanged: Vec<PathBuf>,
    /// The files that failed to import, each with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

/// Imports every archive of `dir` not imported yet (see the module docs); a missing `dir` has
/// nothing to import. Errors only when the directory or the store cannot be read; a bad archive
/// is in the report (and the log), not an error.
pub fn import_all(store: &ImageStore, dir: &Path) -> Result<ImportReport, DropDirError> {
    Importer::new(store.clone(), dir).import_all()
}

/// Imports what `dir` has now and every archive added or replaced later, until `stop`. Creates
/// `dir` if missing. Never fails: what goes wrong is logged, and the watch goes on (polling, if
/// inotify gives out).
pub async fn watch(store: ImageStore, dir: PathBuf, stop: CancellationToken) {
    watch_with(store, dir, stop, true, POLL_EVERY).await
}

/// [`watch`], polling every `every` when `use_inotify` is false or inotify gives out.
async fn watch_with(store: ImageStore, dir: PathBuf, stop: CancellationToken, use_inotify: bool, every: Duration) {
    if let Err(e) = fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot create the image drop directory");
    }
    // The watch is set up before the first pass, so nothing added in between is missed.
    let inotify = if use_inotify {
        match DirWatch::new(&dir) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "no inotify on the image drop directory; polling it");
                None
            }
        }
    } else {
        None
    };
    let importer = Arc::new(Mutex::new(Importer::new(store, &dir)));
    blocking(&importer, |imp| {
        if let Err(e) = imp.import_all() {
            tracing::warn!(error = %e, "cannot import the image drop directory");
        }
    })
    .await;
    tracing::info!(dir = %dir.display(), inotify = inotify.is_some(), "watching the image drop directory");
    if let Some(w) = inotify {
        match follow(&w, &importer, &stop).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "lost the inotify watch; polling instead"),
        }
    }
    poll(&importer, &stop, every).await;
}

/// Imports the archives inotify reports closed or moved in; `Ok` when stopped, `Err` when the
/// watch is lost.
async fn follow(w: &DirWatch, importer: &Shared, stop: &CancellationToken) -> io::Result<()> {
    loop {
        let changes = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            changes = w.next() => changes?,
        };
        let mut names = Vec::new();
        let mut rescan = false;
        for change in changes {
            match change {
                Change::File(name) if is_archive_name(&name) && !names.contains(&name) => names.push(name),
                Change::File(_) => {}
                Change::Overflow => rescan = true,
                Change::Gone => return Err(io::Error::new(io::ErrorKind::NotFound, "the directory went away")),
            }
        }
        blocking(importer, move |imp| {
            if rescan {
                if let Err(e) = imp.import_all() {
                    tracing::warn!(error = %e, "cannot import the image drop directory");
                }
                return;
            }
            for name in names {
                let path = imp.dir.join(&name);
                // Gone again, or not a file: nothing to import.
                let Ok(meta) = fs::metadata(&path) else { continue };
                if meta.is_file() {
                    if let Err(e) = imp.import_file(&path, Stamp::of(&meta)) {
                        tracing::warn!(file = %path.display(), error = %e, "cannot import image archive");
                    }
                }
            }
        })
        .await;
    }
}

/// Lists the directory every `every` and imports each archive whose size and mtime held still
/// since the last listing (and changed since the importer last looked at it).
async fn poll(importer: &Shared, stop: &CancellationToken, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: HashMap<PathBuf, Stamp> = HashMap::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let seen = std::mem::take(&mut last);
        last = blocking(importer, move |imp| {
            let files = match archives(&imp.dir) {
                Ok(files) => files,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot list the image drop directory");
                    return HashMap::new();
                }
            };
            let mut now = HashMap::new();
            for (path, stamp) in files {
                if seen.get(&path) == Some(&stamp) {
                    if let Err(e) = imp.import_file(&path, stamp) {
                        tracing::warn!(file = %path.display(), error = %e, "cannot import image archive");
                    }
                }
                now.insert(path, stamp);
            }
            now
        })
        .await
        .unwrap_or_default();
    }
}

/// The importer, shared by the watch task and the blocking threads it runs imports on.
type Shared = Arc<Mutex<Importer>>;

/// Runs `f` on the importer on a blocking thread (imports are file I/O); `None` if it panicked.
async fn blocking<T: Send + 'static>(
    importer: &Shared,
    f: impl FnOnce(&mut Importer) -> T + Send + 'static,
) -> Option<T> {
    let importer = importer.clone();
    let run = tokio::task::spawn_blocking(move || f(&mut importer.lock().unwrap_or_else(PoisonError::into_inner)));
    match run.await {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::error!(error = %e, "image drop directory import failed");
            None
        }
    }
}

/// A file's size and modification time: it is the same file, unchanged, while these are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp { size: meta.len(), mtime: meta.mtime(), mtime_nsec: meta.mtime_nsec() }
    }
}

/// One imported file in the marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Imported {
    #[serde(flatten)]
    stamp: Stamp,
    references: Vec<String>,
}

/// Whether a file name is one of an archive to import (hidden files, such as a download in
/// progress named `.x.tar`, are not).
fn is_archive_name(name: &str) -> bool {
    !name.starts_with('.') && ARCHIVE_SUFFIXES.iter().any(|s| name.len() > s.len() && name.ends_with(s))
}

/// The archives in `dir`, in name order, with their stamps.
fn archives(dir: &Path) -> Result<Vec<(PathBuf, Stamp)>, IoError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path();
        if !entry.file_name().to_str().is_some_and(is_archive_name) {
            continue;
        }
        // Following symlinks: a link to an archive elsewhere is imported too.
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => out.push((path, Stamp::of(&meta))),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("stat", &path)(e)),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Imports files of the drop directory into the store, remembering what it imported (in the
/// store) and what it looked at (in memory).
struct Importer {
    store: ImageStore,
    dir: PathBuf,
    /// Every file this importer looked at, as it was then: it looks again only once the file
    /// changed (so a bad file is reported once per change, and a reference removed by
    /// `skiff images rm` stays removed while its file is unchanged).
    looked_at: HashMap<PathBuf, Stamp>,
}

/// What became of one file.
enum Outcome {
    Imported(Vec<String>),
    Unchanged,
    Failed(String),
}

impl Importer {
    fn new(store: ImageStore, dir: &Path) -> Importer {
        let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        Importer { store, dir, looked_at: HashMap::new() }
    }

    fn import_all(&mut self) -> Result<ImportReport, DropDirError> {
        let mut report = ImportReport::default();
        let files = match archives(&self.dir) {
            Ok(files) => files,
            Err(e) if e.source.kind() == io::ErrorKind::NotFound => return Ok(report),
            Err(e) => return Err(e.into()),
        };
        for (path, stamp) in files {
            match self.import_file(&path, stamp)? {
                Outcome::Imported(refs) => report.imported.push((path, refs)),
                Outcome::Unchanged => report.unchanged.push(path),
                Outcome::Failed(reason) => report.failed.push((path, reason)),
            }
        }
        Ok(report)
    }

    /// Imports one archive unless this importer looked at it before as it is now, or it is
    /// unchanged since it was imported (by any importer) and the store still has its references.
    fn import_file(&mut self, path: &Path, stamp: Stamp) -> Result<Outcome, DropDirError> {
        if self.looked_at.get(path) == Some(&stamp) {
            return Ok(Outcome::Unchanged);
        }
        let outcome = self.try_import(path, stamp)?;
        self.looked_at.insert(path.to_path_buf(), stamp);
        Ok(outcome)
    }

    fn try_import(&mut self, path: &Path, stamp: Stamp) -> Result<Outcome, DropDirError> {
        let mut marker = self.load_marker();
        let key = path.display().to_string();
        if let Some(seen) = marker.get(&key).filter(|seen| seen.stamp == stamp) {
            let refs = self.store.refs()?;
            if seen.references.iter().all(|r| refs.contains_key(r)) {
                tracing::debug!(file = %path.display(), "image archive imported before; unchanged");
                return Ok(Outcome::Unchanged);
            }
        }
        match self.store.import(path) {
            Ok(references) => {
                tracing::info!(file = %path.display(), references = ?references, "image archive imported");
                marker.insert(key, Imported { stamp, references: references.clone() });
                self.save_marker(&marker);
                Ok(Outcome::Imported(references))
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "image archive refused; skipped");
                Ok(Outcome::Failed(e.to_string()))
            }
        }
    }

    fn marker_path(&self) -> PathBuf {
        self.store.root().join(MARKER)
    }

    /// The marker; an unreadable one is as good as none (its files are imported again).
    fn load_marker(&self) -> BTreeMap<String, Imported> {
        let path = self.marker_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "unreadable drop directory marker; ignored");
                BTreeMap::new()
            }),
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read the drop directory marker");
                }
                BTreeMap::new()
            }
        }
    }

    /// Writes the marker (temp and rename), keeping only the files still there. A failure costs
    /// a second import later, so it is logged, not returned.
    fn save_marker(&self, marker: &BTreeMap<String, Imported>) {
        let path = self.marker_path();
        let kept: BTreeMap<&String, &Imported> = marker.iter().filter(|(file, _)| Path::new(file).exists()).collect();
        let tmp = self.store.root().join(format!(".{MARKER}-{}-{}", std::process::id(), rand::random::<u32>()));
        let written = serde_json::to_vec_pretty(&kept)
            .map_err(io::Error::other)
            .and_then(|bytes| fs::write(&tmp, bytes))
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), error = %e, "cannot write the drop directory marker");
        }
    }
}

/// What inotify said about the directory.
#[derive(Debug)]
enum Change {
    /// A file in it was closed after writing, or moved in.
    File(String),
    /// Events were lost: look at everything.
    Overflow,
    /// The directory itself was removed, moved or unmounted.
    Gone,
}

/// An inotify watch on one directory, read through tokio.
struct DirWatch {
    fd: AsyncFd<OwnedFd>,
}

impl DirWatch {
    fn new(dir: &Path) -> io::Result<DirWatch> {
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
        let flags = WatchFlags::CLOSE_WRITE
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR;
        inotify::add_watch(&fd, dir, flags)?;
        // SAFETY: the AsyncFd owns the inotify descriptor; nothing else closes it while it is
        // registered.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }?;
        Ok(DirWatch { fd })
    }

    /// The next changes (at least one).
    async fn next(&self) -> io::Result<Vec<Change>> {
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| read_changes(fd.get_ref())) {
                Ok(changes) => return changes,
                Err(_would_block) => continue,
            }
        }
    }
}

/// Every event inotify has queued; `WouldBlock` when there is none of interest (which tells
/// tokio to wait for the next).
fn read_changes(fd: &OwnedFd) -> io::Result<Vec<Change>> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
    let mut reader = inotify::Reader::new(fd, &mut buf);
    let mut out = Vec::new();
    loop {
        match reader.next() {
            Ok(event) => {
                let flags = event.events();
                if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                    out.push(Change::Overflow);
                } else if flags
                    .intersects(ReadFlags::IGNORED | ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF | ReadFlags::UNMOUNT)
                {
                    out.push(Change::Gone);
                } else if flags.intersects(ReadFlags::CLOSE_WRITE | ReadFlags::MOVED_TO) {
                    if let Some(name) = event.file_name().and_then(|n| n.to_str().ok()) {
                        out.push(Change::File(name.to_string()));
                    }
                }
            }
            Err(rustix::io::Errno::WOULDBLOCK) => break,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if out.is_empty() {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A docker-archive of one image tagged `tag`.
    fn archive(tag: &str) -> Vec<u8> {
        let config = format!(r#"{{"os":"linux","tag":"{tag}"}}"#).into_bytes();
        let manifest = format!(r#"[{{"Config":"config.json","RepoTags":["{tag}"],"Layers":["l/layer.tar"]}}]"#);
        let mut b = tar::Builder::new(Vec::new());
        for (name, bytes) in
            [("config.json", config), ("l/layer.tar", b"layer".to_vec()), ("manifest.json", manifest.into_bytes())]
        {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, bytes.as_slice()).expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn archive_names() {
        for yes in ["a.tar", "busybox.tar.gz", "x.tar.zst"] {
            assert!(is_archive_name(yes), "{yes}");
        }
        for no in [".tar", ".a.tar", "a.tgz", "a.tar.gz.part", "a.zip", "tar", "a.tar.zst~"] {
            assert!(!is_archive_name(no), "{no}");
        }
    }

    #[test]
    fn a_pass_imports_new_files_once_and_reports_bad_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("store");
        let drop = dir.path().join("images");
        assert_eq!(import_all(&store, &drop).expect("missing dir"), ImportReport::default());
        fs::create_dir_all(&drop).expect("mkdir");
        fs::write(drop.join("a.tar"), archive("a:1")).expect("write");
        fs::write(drop.join("bad.tar.gz"), b"not an archive").expect("write");
        fs::write(drop.join("notes.txt"), b"ignored").expect("write");
        let report = import_all(&store, &drop).expect("import");
        assert_eq!(report.imported.len(), 1, "{report:?}");
        assert_eq!(report.imported[0].1, vec!["docker.io/library/a:1"]);
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(report.failed[0].0.ends_with("bad.tar.gz"));
        assert_eq!(store.refs().expect("refs").len(), 1, "the bad file added nothing");

        let again = import_all(&store, &drop).expect("again");
        assert!(again.imported.is_empty(), "{again:?}");
        assert_eq!(again.unchanged.len(), 1);
        assert_eq!(again.failed.len(), 1, "a new pass (a restart) tries a bad file again");

        // A reference removed from the store comes back from its archive; a changed file is
        // imported again.
        assert!(store.remove("a:1").expect("remove"));
        assert_eq!(import_all(&store, &drop).expect("pass").imported.len(), 1);
        fs::write(drop.join("a.tar"), archive("a:2")).expect("rewrite");
        let changed = import_all(&store, &drop).expect("pass");
        assert_eq!(changed.imported[0].1, vec!["docker.io/library/a:2"]);
    }

    #[tokio::test]
    async fn the_poller_imports_a_file_once_it_holds_still() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("store");
        let drop = dir.path().join("images");
        let stop = CancellationToken::new();
        let task =
            tokio::spawn(watch_with(store.clone(), drop.clone(), stop.clone(), false, Duration::from_millis(50)));
        testkit::eventually("the drop directory", Duration::from_secs(5), || async { drop.is_dir().then_some(()) })
            .await;
        fs::write(
            drop.join("late.tar.zst"),
            ruzstd::encoding::compress_to_vec(
                archive("late:1").as_slice(),
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
        )
        .expect("write");
        testkit::eventually("late:1 imported", Duration::from_secs(10), || async {
            store.resolve("late:1").ok().flatten()
        })
        .await;
        // Removed from the store, it stays removed while the file is unchanged...
        assert!(store.remove("late:1").expect("remove"));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(store.resolve("late:1").expect("resolve").is_none(), "not imported again");
        // ... and a replaced file is imported again.
        let staged = dir.path().join("staged.tar");
        fs::write(&staged, archive("late:2")).expect("write");
        fs::rename(&staged, drop.join("late.tar.zst")).expect("replace");
        testkit::eventually("late:2 imported", Duration::from_secs(10), || async {
            store.resolve("late:2").ok().flatten()
        })
        .await;
        stop.cancel();
        task.await.expect("watcher");
    }
}
