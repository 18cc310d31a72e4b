//! Replays every committed fuzz seed (`fuzz/seeds/<target>/`) and every saved crash
//! (`fuzz/regressions/<target>/`) through the fuzz targets' own definitions
//! ([`tinyrnn_tests::fuzz_harness`]), as ordinary tests: no libFuzzer, no sanitizer build. A crash
//! that `cargo xtask fuzz` saved keeps failing here until the bug is fixed; then it guards
//! against the bug coming back.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Once;

use tinyrnn_tests::fuzz_harness::{target, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted by name; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("list a fuzz directory").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Names of the subdirectories (or, with `ext`, the file stems with that extension) of `dir`.
fn names(dir: &Path, ext: Option<&str>) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .map(|e| e.expect("list a fuzz directory").path())
        .filter(|p| match ext {
            None => p.is_dir(),
            Some(ext) => p.extension().is_some_and(|e| e == ext),
        })
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    out.sort();
    out
}

thread_local! {
    /// `Some` while this thread runs an input: the panic hook records the panic here instead of
    /// printing it.
    static CAUGHT: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records panics of inputs being replayed, with their
/// location, and leaves every other panic to the default hook.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let recorded = CAUGHT.with(|c| match c.borrow_mut().as_mut() {
                Some(slot) => {
                    *slot = Some(info.to_string().replace('\n', " "));
                    true
                }
                None => false,
            });
            if !recorded {
                default(info);
            }
        }));
    });
}

/// Runs one input; the panic message with its location if it panicked.
fn run_caught(run: fn(&[u8]), data: &[u8]) -> Result<(), String> {
    install_hook();
    CAUGHT.with(|c| *c.borrow_mut() = Some(None));
    let result = std::panic::catch_unwind(|| run(data));
    let message = CAUGHT.with(|c| c.borrow_mut().take()).flatten();
    match result {
        Ok(()) => Ok(()),
        Err(_) => Err(message.unwrap_or_else(|| "panicked".to_string())),
    }
}

fn clip(text: &str, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn replay(name: &str) {
    let target = target(name).unwrap_or_else(|| panic!("no fuzz target `{name}`"));
    let seeds = files(&fuzz_dir().join("seeds").join(name));
    assert!(!seeds.is_empty(), "fuzz/seeds/{name}/ has no seed inputs");
    let regressions = files(&fuzz_dir().join("regressions").join(name));
    let mut failures = Vec::new();
    for path in seeds.iter().chain(&regressions) {
        let data =
            std::fs::read(path).unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
        if let Err(message) = run_caught(target.run, &data) {
            let file = path.strip_prefix(fuzz_dir()).unwrap_or(path);
            failures.push(format!("fuzz/{}: {}", file.display(), clip(&message, 400)));
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz target `{name}`: {} of {} inputs fail (in fuzz/, \
         `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a {name} <file>` runs one under libFuzzer):\n{}",
        failures.len(),
        seeds.len() + regressions.len(),
        failures.join("\n")
    );
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        /// Targets with a replay test here.
        const REPLAYED: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*
    };
}

replay_tests!(
    float_model,
    quant_model,
    ts,
    csv_sequence,
    csv_dataset,
    csv_dir,
    round_trip,
);

/// The harness's target list, the replay tests, the libFuzzer binaries (`fuzz_targets/*.rs`, each
/// a `[[bin]]` of `fuzz/Cargo.toml`) and the seed directories name the same targets, and every
/// dictionary and regression directory belongs to one.
#[test]
fn every_target_is_everywhere() {
    let mut harness: Vec<String> = TARGETS.iter().map(|t| t.name.to_string()).collect();
    harness.sort();
    let mut replayed: Vec<String> = REPLAYED.iter().map(|s| s.to_string()).collect();
    replayed.sort();
    assert_eq!(replayed, harness, "replay tests vs fuzz_harness::TARGETS");
    let binaries = names(&fuzz_dir().join("fuzz_targets"), Some("rs"));
    assert_eq!(
        binaries, harness,
        "fuzz/fuzz_targets/*.rs vs fuzz_harness::TARGETS"
    );
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for name in &harness {
        let entry = format!("name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\"");
        assert!(
            manifest.contains(&entry),
            "fuzz/Cargo.toml has no [[bin]] `{name}` at fuzz_targets/{name}.rs"
        );
    }
    let seeds = names(&fuzz_dir().join("seeds"), None);
    assert_eq!(seeds, harness, "fuzz/seeds/* vs fuzz_harness::TARGETS");
    for dict in names(&fuzz_dir().join("dicts"), Some("dict")) {
        assert!(
            harness.contains(&dict),
            "fuzz/dicts/{dict}.dict belongs to no fuzz target"
        );
    }
    for dir in names(&fuzz_dir().join("regressions"), None) {
        assert!(
            harness.contains(&dir),
            "fuzz/regressions/{dir}/ belongs to no fuzz target"
        );
    }
}
