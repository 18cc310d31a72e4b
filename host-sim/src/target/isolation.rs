//! Isolation of on-target runs started at the same time from one checkout (`tinyrnn verify`,
//! `tinyrnn bench`, the demo's classification, the `cargo xtask test` firmware checks).
//!
//! Two things are shared by every run: the generated sources the firmware `include!`s
//! (`firmware/generated/<bin>/`) and the firmware's cargo target directory, whose ELF files the
//! next build overwrites. Both are used only while holding a [`FirmwareLock`], an exclusive OS
//! file lock on `firmware/target/tinyrnn.lock`: a run writes its case table, builds, copies the
//! ELF into its own [`RunDir`] and releases the lock before QEMU starts, so runs wait for each
//! other's builds only, and a warm build of unchanged sources stays a no-op. Everything after
//! the build (the ELF copy, the semihosting files `case<i>.in`/`.out`/`.seq`, QEMU's working
//! directory) lives in the run directory, which is removed when the run ends, on success or
//! error.
//!
//! The OS releases a file lock when its process dies, so a killed run never blocks later ones.
//! A killed run's directory is removed by the next run: every live run holds a lock on a file in
//! its own directory, and a directory whose file nobody holds is stale.

use std::{
    fs::{File, OpenOptions, TryLockError},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use super::build::{build_bin, Built};
use super::cases::{write_cases, CaseSource};

/// The lock file, in the firmware's cargo target directory.
pub const LOCK_FILE: &str = "tinyrnn.lock";

/// The directory holding every run directory, in the firmware's cargo target directory.
pub const RUNS_DIR: &str = "tinyrnn-runs";

/// The file a live run holds locked inside its run directory.
const IN_USE_FILE: &str = ".in-use";

/// Exclusive use of the firmware workspace's generated sources (`firmware/generated/`) and
/// cargo target directory, held from writing a case table until the built ELF is copied.
/// Released when dropped (or when the process dies).
#[derive(Debug)]
pub struct FirmwareLock {
    firmware_dir: PathBuf,
    // Held, never read: the lock lives as long as the open file.
    _file: File,
}

impl FirmwareLock {
    /// Takes the lock of the firmware workspace at `firmware_dir`, waiting for another run to
    /// release it (and saying so on stderr when it has to wait).
    pub fn acquire(firmware_dir: &Path) -> Result<FirmwareLock> {
        let (path, file) = open_lock_file(firmware_dir)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                eprintln!(
                    "waiting for another tinyrnn run to finish its firmware build (lock {})",
                    path.display()
                );
                file.lock()
                    .with_context(|| format!("locking {}", path.display()))?;
            }
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("locking {}", path.display()));
            }
        }
        Ok(FirmwareLock {
            firmware_dir: firmware_dir.to_owned(),
            _file: file,
        })
    }

    /// Takes the lock if no other run holds it (`None` if one does).
    pub fn try_acquire(firmware_dir: &Path) -> Result<Option<FirmwareLock>> {
        let (path, file) = open_lock_file(firmware_dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FirmwareLock {
                firmware_dir: firmware_dir.to_owned(),
                _file: file,
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    /// The firmware workspace this lock is for.
    pub fn firmware_dir(&self) -> &Path {
        &self.firmware_dir
    }

    /// Where the case table of `bin` is written (`firmware/generated/<bin>/`, the path the
    /// binary `include!`s).
    pub fn generated_dir(&self, bin: &str) -> PathBuf {
        self.firmware_dir.join("generated").join(bin)
    }

    /// The firmware's cargo target directory.
    pub fn target_dir(&self) -> PathBuf {
        self.firmware_dir.join("target")
    }
}

fn open_lock_file(firmware_dir: &Path) -> Result<(PathBuf, File)> {
    let dir = firmware_dir.join("target");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    Ok((path, file))
}

/// The private directory of one run: its copy of the firmware ELF, the semihosting files and
/// QEMU's working directory. Removed when dropped.
#[derive(Debug)]
pub struct RunDir {
    // Declared first so that it is closed before the directory is removed (Windows cannot
    // remove an open file).
    _in_use: File,
    dir: tempfile::TempDir,
}

impl RunDir {
    /// A new, empty run directory under `firmware/target/tinyrnn-runs/`, named after `label`.
    /// Removes the directories of runs that were killed (created under the lock, so that a
    /// directory and its locked file appear together for every other run).
    pub fn create(lock: &FirmwareLock, label: &str) -> Result<RunDir> {
        let runs = lock.target_dir().join(RUNS_DIR);
        std::fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
        remove_stale_runs(&runs);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{label}-"))
            .tempdir_in(&runs)
            .with_context(|| format!("creating a run directory in {}", runs.display()))?;
        let marker = dir.path().join(IN_USE_FILE);
        let in_use =
            File::create(&marker).with_context(|| format!("creating {}", marker.display()))?;
        in_use
            .try_lock()
            .with_context(|| format!("locking {}", marker.display()))?;
        Ok(RunDir {
            _in_use: in_use,
            dir,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes every run directory in `runs` that no live run holds; returns how many.
/// Best effort: a directory that cannot be removed has a unique name and is in nobody's way.
fn remove_stale_runs(runs: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !in_use(&path) && std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether a live run holds `dir` (its in-use file is locked). A directory without the file is
/// a run killed while creating it; one whose state cannot be read is left alone.
fn in_use(dir: &Path) -> bool {
    match File::open(dir.join(IN_USE_FILE)) {
        // The lock taken here is released when `file` is dropped, before the removal.
        Ok(file) => !matches!(file.try_lock(), Ok(())),
        Err(error) => error.kind() != std::io::ErrorKind::NotFound,
    }
}

/// Writes `cases` as the case table of `bin`, builds `bin` (feature `generated`) for `target`
/// and copies the ELF into `run_dir`: the returned [`Built::elf`] is that copy, which no other
/// run's build can overwrite.
pub fn build_cases(
    lock: &FirmwareLock,
    run_dir: &RunDir,
    target: &str,
    bin: &str,
    cases: &[&CaseSource],
    verbose: bool,
) -> Result<Built> {
    write_cases(lock, bin, cases)?;
    let built = build_bin(lock, target, bin, &["generated"], verbose)?;
    let copy = run_dir.path().join(bin);
    std::fs::copy(&built.elf, &copy).with_context(|| {
        format!(
            "copying the firmware {} to {}",
            built.elf.display(),
            copy.display()
        )
    })?;
    Ok(Built {
        elf: copy,
        elapsed: built.elapsed,
    })
}

/// [`build_cases`] in a new [`RunDir`] of the firmware workspace ([`super::firmware_dir`]),
/// holding the [`FirmwareLock`] only for the build.
pub fn isolated_build(
    target: &str,
    bin: &str,
    cases: &[&CaseSource],
    verbose: bool,
) -> Result<(RunDir, Built)> {
    let lock = FirmwareLock::acquire(&super::firmware_dir())?;
    let run_dir = RunDir::create(&lock, &format!("{bin}-{target}"))?;
    let built = build_cases(&lock, &run_dir, target, bin, cases, verbose)?;
    Ok((run_dir, built))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let firmware = scratch();
        let held = FirmwareLock::acquire(firmware.path()).expect("lock");
        assert!(firmware.path().join("target").join(LOCK_FILE).is_file());
        assert!(FirmwareLock::try_acquire(firmware.path())
            .expect("try")
            .is_none());
        drop(held);
        assert!(FirmwareLock::try_acquire(firmware.path())
            .expect("try")
            .is_some());
    }

    #[test]
    fn a_waiting_run_proceeds_when_the_holder_releases() {
        let firmware = scratch();
        let held = FirmwareLock::acquire(firmware.path()).expect("lock");
        let acquired = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let lock = FirmwareLock::acquire(firmware.path()).expect("lock");
                acquired.store(true, Ordering::SeqCst);
                drop(lock);
            });
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                !acquired.load(Ordering::SeqCst),
                "took the lock while it was held"
            );
            drop(held);
            waiter.join().expect("waiter");
        });
        assert!(acquired.load(Ordering::SeqCst));
    }

    #[test]
    fn run_directories_are_private_and_removed_when_dropped() {
        let firmware = scratch();
        let lock = FirmwareLock::acquire(firmware.path()).expect("lock");
        let a = RunDir::create(&lock, "verify-thumbv7m-none-eabi").expect("run dir");
        let b = RunDir::create(&lock, "verify-thumbv7m-none-eabi").expect("run dir");
        assert_ne!(a.path(), b.path());
        assert!(a
            .path()
            .starts_with(firmware.path().join("target").join(RUNS_DIR)));
        std::fs::write(a.path().join("case0.out"), b"x").expect("write");
        let path = a.path().to_owned();
        drop(a);
        assert!(!path.exists(), "{} left behind", path.display());
        assert!(b.path().is_dir(), "a live run's directory was removed");
    }

    #[test]
    fn a_killed_runs_directory_is_removed_by_the_next_run_and_a_live_one_is_kept() {
        let firmware = scratch();
        let runs = firmware.path().join("target").join(RUNS_DIR);
        // What a killed run leaves: its files, and an in-use file that nobody holds any more
        // (the OS dropped the lock with the process); or a directory made just before the kill.
        let killed = runs.join("verify-thumbv7m-none-eabi-killed");
        std::fs::create_dir_all(&killed).expect("mkdir");
        std::fs::write(killed.join(IN_USE_FILE), b"").expect("write");
        std::fs::write(killed.join("case0.in"), b"1234").expect("write");
        let half_made = runs.join("bench-thumbv6m-none-eabi-half");
        std::fs::create_dir_all(&half_made).expect("mkdir");

        let lock = FirmwareLock::acquire(firmware.path()).expect("lock");
        let live = RunDir::create(&lock, "verify-thumbv7m-none-eabi").expect("run dir");
        assert!(!killed.exists() && !half_made.exists());
        assert!(live.path().is_dir());

        let next = RunDir::create(&lock, "verify-thumbv7m-none-eabi").expect("run dir");
        assert!(live.path().is_dir(), "the live run's directory was swept");
        assert_eq!(remove_stale_runs(&runs), 0);
        drop((live, next));
        assert_eq!(std::fs::read_dir(&runs).expect("runs").count(), 0);
    }

    #[test]
    fn build_cases_writes_the_table_under_the_lock_and_reports_a_failed_build() {
        // A broken firmware manifest (so that cargo stops at once and looks no further up):
        // the table is written, then the build fails with a message, not a panic.
        let firmware = scratch();
        std::fs::write(firmware.path().join("Cargo.toml"), "[package]\n").expect("write");
        let lock = FirmwareLock::acquire(firmware.path()).expect("lock");
        let run_dir = RunDir::create(&lock, "verify-x").expect("run dir");
        let case = CaseSource {
            name: "m q15".into(),
            source: "// model\n".into(),
            stream: false,
        };
        let error = build_cases(
            &lock,
            &run_dir,
            "thumbv7em-none-eabihf",
            "verify",
            &[&case],
            false,
        )
        .expect_err("no firmware workspace");
        let table = lock.generated_dir("verify");
        assert_eq!(
            std::fs::read_to_string(table.join("case_0.rs")).expect("case"),
            "// model\n"
        );
        assert!(table.join("cases.rs").is_file());
        let message = format!("{error:#}");
        assert!(
            message.contains("firmware build failed") || message.contains("not installed"),
            "{message}"
        );
    }
}
