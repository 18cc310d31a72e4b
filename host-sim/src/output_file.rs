//! Every file the `tinyrnn` tool writes goes through this module.
//!
//! The rules, the same for every subcommand:
//!
//! - **Atomic**: an output is written to a temporary file in the destination's own directory,
//!   flushed and `fsync`ed, and renamed over the destination only when complete. A run that
//!   fails half-way (an error, a full disk, `ulimit -f`) leaves the previous file untouched;
//!   on an error the temporary file is removed.
//! - **Checked before work**: [`OutputFile::create`] creates that temporary file, so a
//!   subcommand that creates its outputs first learns that it cannot write them before it
//!   spends time on training or running.
//! - **Never over an input**: [`refuse_overlaps`] rejects an output that is the same file as an
//!   input or as another output of the same command, before anything is read or written.
//! - **No directories created**: a missing parent directory is an error naming it; the tool
//!   only writes the file it was asked to write.
//!
//! A destination that is a symbolic link is written through: the file the link points to is
//! replaced, the link stays. An existing destination keeps its permissions; a new one gets the
//! usual `0666` minus the process umask; a read-only one is not replaced. A device or pipe
//! (`/dev/stdout`, a FIFO) is written directly. A process killed while writing (SIGKILL,
//! SIGXFSZ) leaves its temporary file, named `.<name>.<random>.tinyrnn-tmp`, beside the
//! untouched destination.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use tempfile::NamedTempFile;

/// An output being written: a temporary file beside its destination, renamed into place by
/// [`OutputFile::commit`]. Dropping it without committing removes the temporary file and
/// leaves the destination as it was.
#[derive(Debug)]
pub struct OutputFile {
    /// The flag that named the output (`--out`), for messages.
    flag: String,
    /// The path as the user gave it, for messages.
    shown: PathBuf,
    /// Where the file lands (symbolic links resolved).
    target: PathBuf,
    sink: Sink,
}

/// Where the bytes go.
#[derive(Debug)]
enum Sink {
    /// A regular file: a temporary file renamed into place.
    Temp(BufWriter<NamedTempFile>),
    /// A device, pipe or socket (`/dev/stdout`, a FIFO): written directly, since there is no
    /// earlier content to protect and nothing to rename.
    Direct(BufWriter<fs::File>),
}

impl OutputFile {
    /// Creates the temporary file for the output `path`, given with `flag` (e.g. `--out`;
    /// empty when the path does not come from the command line).
    ///
    /// Fails, naming the path, if `path` is a directory, if its parent directory does not
    /// exist or is not a directory, or if the directory is not writable.
    pub fn create(flag: &str, path: &Path) -> Result<OutputFile> {
        let shown = path.to_path_buf();
        let what = describe(flag, path);
        if let Ok(m) = fs::metadata(path) {
            if !m.is_file() && !m.is_dir() {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| anyhow!("{what}: cannot open: {e}"))?;
                return Ok(OutputFile {
                    flag: flag.to_string(),
                    target: shown.clone(),
                    shown,
                    sink: Sink::Direct(BufWriter::new(f)),
                });
            }
        }
        let target = resolve_links(path);
        if target.is_dir() {
            bail!("{what}: cannot create the file: it is a directory");
        }
        let Some(name) = target.file_name() else {
            bail!("{what}: cannot create the file: the path has no file name");
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!(
                "{what}: cannot create the file: {} is not a directory",
                dir.display()
            ),
            Err(_) => bail!(
                "{what}: cannot create the file: the directory {} does not exist \
                 (tinyrnn does not create directories)",
                dir.display()
            ),
        }
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tinyrnn-tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Ask for 0666 at open(2), so the umask applies as for any new file (tempfile's
            // default, 0600, would make every output private).
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        let temp = builder
            .tempfile_in(&dir)
            .map_err(|e| anyhow!("{what}: cannot create the file: {e}"))?;
        if let Ok(existing) = fs::metadata(&target) {
            // The rename would succeed where writing into the file would not: keep the
            // protection a read-only file asks for.
            if existing.permissions().readonly() {
                bail!("{what}: cannot replace the file: it is read-only");
            }
            // Replacing a file should not change who may read it.
            temp.as_file()
                .set_permissions(existing.permissions())
                .map_err(|e| anyhow!("{what}: cannot create the file: {e}"))?;
        }
        Ok(OutputFile {
            flag: flag.to_string(),
            shown,
            target,
            sink: Sink::Temp(BufWriter::new(temp)),
        })
    }

    /// The destination path as given.
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// Appends `bytes` to the temporary file.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let result = match &mut self.sink {
            Sink::Temp(w) => w.write_all(bytes),
            Sink::Direct(w) => w.write_all(bytes),
        };
        result.map_err(|e| anyhow!("{}: cannot write: {e}", describe(&self.flag, &self.shown)))
    }

    /// Flushes and `fsync`s the temporary file and renames it over the destination.
    pub fn commit(self) -> Result<()> {
        let what = describe(&self.flag, &self.shown);
        let temp = match self.sink {
            Sink::Temp(w) => w,
            Sink::Direct(mut w) => {
                return w.flush().map_err(|e| anyhow!("{what}: cannot write: {e}"));
            }
        };
        let temp = temp
            .into_inner()
            .map_err(|e| anyhow!("{what}: cannot write: {}", e.error()))?;
        temp.as_file()
            .sync_all()
            .map_err(|e| anyhow!("{what}: cannot write: {e}"))?;
        temp.persist(&self.target)
            .map_err(|e| anyhow!("{what}: cannot replace the file: {}", e.error))?;
        #[cfg(unix)]
        if let Some(dir) = self.target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            // Makes the rename itself durable. Best effort: some file systems refuse to sync a
            // directory, and the file is already complete and in place.
            let _ = fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }

    /// Writes `bytes` as the whole file and commits it.
    pub fn write_all(mut self, bytes: &[u8]) -> Result<()> {
        self.write(bytes)?;
        self.commit()
    }
}

/// Writes `bytes` to `path` atomically (see the [module docs](self)): the one call for an
/// output that is complete in memory.
pub fn write_atomically(flag: &str, path: &Path, bytes: &[u8]) -> Result<()> {
    OutputFile::create(flag, path)?.write_all(bytes)
}

/// Refuses an output that is the same file as an input, or as another output, before any
/// work: `outputs` and `inputs` are `(flag, path)` pairs. An input that is a dataset
/// directory counts as every file [`crate::dataset::source_files`] would read from it.
///
/// "Same file" is the same device and inode when both exist (symbolic links, hard links and
/// `./a` vs `a` all compare equal), else the same canonical path.
pub fn refuse_overlaps(outputs: &[(&str, &Path)], inputs: &[(&str, &Path)]) -> Result<()> {
    for (i, &(out_flag, out)) in outputs.iter().enumerate() {
        for &(other_flag, other) in &outputs[..i] {
            if same_file(out, other) {
                bail!(
                    "{out_flag} and {other_flag} name the same file ({}); give each output \
                     its own path",
                    out.display()
                );
            }
        }
        for &(in_flag, input) in inputs {
            let files = if input.is_dir() {
                crate::dataset::source_files(input)
            } else {
                vec![input.to_path_buf()]
            };
            if let Some(f) = files.iter().find(|f| same_file(out, f)) {
                let which = if f.as_path() == input {
                    String::new()
                } else {
                    format!(", read from {} {}", in_flag, input.display())
                };
                bail!(
                    "{out_flag} and {in_flag} name the same file ({}{which}); refusing to \
                     overwrite an input",
                    out.display()
                );
            }
        }
    }
    Ok(())
}

/// `flag path`, or just the path when there is no flag.
fn describe(flag: &str, path: &Path) -> String {
    if flag.is_empty() {
        path.display().to_string()
    } else {
        format!("{flag} {}", path.display())
    }
}

/// Follows symbolic links at the end of `path` (also dangling ones, so that a link to a file
/// that does not exist yet creates that file).
fn resolve_links(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    // A cycle ends here as an ordinary path; creating it then fails with the system's error.
    for _ in 0..40 {
        let is_link = fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            break;
        }
        let Ok(next) = fs::read_link(&p) else {
            break;
        };
        p = match p.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
    }
    p
}

/// `path` made absolute with every symbolic link resolved; for a path that does not exist,
/// its parent is canonicalised and the file name appended.
fn canonical(path: &Path) -> Option<PathBuf> {
    let path = resolve_links(path);
    if let Ok(c) = fs::canonicalize(&path) {
        return Some(c);
    }
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(fs::canonicalize(dir).ok()?.join(name))
}

/// Whether `a` and `b` are the same file (see [`refuse_overlaps`]).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (fs::metadata(a), fs::metadata(b)) {
            return (ma.dev(), ma.ino()) == (mb.dev(), mb.ino());
        }
    }
    match (canonical(a), canonical(b)) {
        (Some(ca), Some(cb)) => ca == cb,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_replaces_and_drop_keeps_the_old_file() {
        let d = dir();
        let p = d.path().join("out.csv");
        fs::write(&p, "old\n").unwrap();
        let mut o = OutputFile::create("--out", &p).unwrap();
        o.write(b"new, partial").unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "old\n",
            "visible before commit"
        );
        drop(o);
        assert_eq!(fs::read_to_string(&p).unwrap(), "old\n");
        assert_eq!(entries(d.path()), ["out.csv"], "temporary file left behind");
        write_atomically("--out", &p, b"new\n").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new\n");
        assert_eq!(entries(d.path()), ["out.csv"]);
    }

    #[test]
    fn missing_or_bad_parent_is_an_error_and_creates_nothing() {
        let d = dir();
        let p = d.path().join("a/b/out.csv");
        let e = OutputFile::create("--output", &p).unwrap_err().to_string();
        assert!(e.starts_with("--output "), "{e}");
        assert!(e.contains("a/b does not exist"), "{e}");
        assert!(!d.path().join("a").exists());
        fs::write(d.path().join("f"), "").unwrap();
        let e = OutputFile::create("--out", &d.path().join("f/x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a directory"), "{e}");
        let e = OutputFile::create("--out", d.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("it is a directory"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn permissions_of_new_and_replaced_files() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir();
        let p = d.path().join("new.txt");
        write_atomically("", &p, b"x").unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        // What any new file gets (not tempfile's private 0600): 0666 minus the umask.
        #[cfg(target_os = "linux")]
        {
            let status = fs::read_to_string("/proc/self/status").unwrap();
            let umask = status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
                .unwrap();
            assert_eq!(mode, 0o666 & !umask, "{mode:o}, umask {umask:o}");
        }
        #[cfg(not(target_os = "linux"))]
        let _ = mode;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically("", &p, b"y").unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn a_read_only_file_is_not_replaced() {
        let d = dir();
        let p = d.path().join("keep.csv");
        fs::write(&p, "old").unwrap();
        let mut perm = fs::metadata(&p).unwrap().permissions();
        perm.set_readonly(true);
        fs::set_permissions(&p, perm).unwrap();
        let e = write_atomically("--out", &p, b"new")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("keep.csv: cannot replace the file: it is read-only"),
            "{e}"
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(entries(d.path()), ["keep.csv"]);
    }

    #[cfg(unix)]
    #[test]
    fn writes_through_a_symbolic_link() {
        let d = dir();
        let real = d.path().join("real.csv");
        fs::write(&real, "old").unwrap();
        let link = d.path().join("link.csv");
        std::os::unix::fs::symlink("real.csv", &link).unwrap();
        write_atomically("", &link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        // A dangling link creates its target.
        let dangling = d.path().join("dangling");
        std::os::unix::fs::symlink("later.csv", &dangling).unwrap();
        write_atomically("", &dangling, b"z").unwrap();
        assert_eq!(fs::read_to_string(d.path().join("later.csv")).unwrap(), "z");
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_written_directly() {
        write_atomically("--output", Path::new("/dev/null"), b"discarded").unwrap();
    }

    #[test]
    fn same_file_cases() {
        let d = dir();
        let a = d.path().join("a.csv");
        fs::write(&a, "1").unwrap();
        let dotted = d.path().join(".").join("a.csv");
        assert!(same_file(&a, &dotted));
        assert!(!same_file(&a, &d.path().join("b.csv")));
        // Neither exists: compared by canonical path.
        let n = d.path().join("n.csv");
        assert!(same_file(&n, &d.path().join(".").join("n.csv")));
        #[cfg(unix)]
        {
            let hard = d.path().join("hard.csv");
            fs::hard_link(&a, &hard).unwrap();
            assert!(same_file(&a, &hard));
            let soft = d.path().join("soft.csv");
            std::os::unix::fs::symlink(&a, &soft).unwrap();
            assert!(same_file(&soft, &a));
        }
    }

    #[test]
    fn overlaps_name_both_flags_and_the_path() {
        let d = dir();
        let a = d.path().join("a.csv");
        fs::write(&a, "1").unwrap();
        let b = d.path().join("b.svg");
        let e = refuse_overlaps(&[("--out", &a)], &[("--input", &a)])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--out and --input name the same file ("),
            "{e}"
        );
        assert!(e.contains("a.csv"), "{e}");
        let e = refuse_overlaps(&[("--out", &b), ("--curves", &b)], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--curves and --out name the same file"),
            "{e}"
        );
        refuse_overlaps(&[("--out", &b)], &[("--input", &a)]).unwrap();
    }
}
