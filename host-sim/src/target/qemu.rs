//! The QEMU machine for each firmware target, and running a firmware ELF under QEMU with its
//! defmt log decoded and its exit status taken from QEMU itself.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::defmt_log::{DefmtTable, LogLine};

/// A firmware target and the QEMU machine that runs it (see `QEMU.md`).
pub struct Machine {
    /// Rust target triple.
    pub target: &'static str,
    /// `qemu-system-arm -machine`.
    pub machine: &'static str,
    /// `qemu-system-arm -cpu`.
    pub cpu: &'static str,
    /// SysTick ticks per executed instruction under `-icount shift=10`
    /// (core clock × 1024 ns).
    pub ticks_per_instruction: f64,
}

/// Every ARM firmware target, in the order they are built and run.
pub const MACHINES: &[Machine] = &[
    Machine {
        target: "thumbv6m-none-eabi",
        machine: "microbit",
        cpu: "cortex-m0",
        ticks_per_instruction: 16.384,
    },
    Machine {
        target: "thumbv7m-none-eabi",
        machine: "lm3s6965evb",
        cpu: "cortex-m3",
        ticks_per_instruction: 12.8,
    },
    Machine {
        target: "thumbv7em-none-eabihf",
        machine: "mps2-an386",
        cpu: "cortex-m4",
        ticks_per_instruction: 25.6,
    },
    Machine {
        target: "thumbv8m.main-none-eabihf",
        machine: "mps2-an505",
        cpu: "cortex-m33",
        ticks_per_instruction: 20.48,
    },
];

/// The emulator program for all ARM targets.
pub const QEMU: &str = "qemu-system-arm";

/// How to install QEMU when it is missing.
pub const QEMU_INSTALL_HINT: &str =
    "install it with `sudo apt-get update && sudo apt-get install -y \
     qemu-system-arm` (Debian/Ubuntu; `cargo xtask qemu-setup` does this when run as root)";

/// Lines QEMU prints on stderr that say nothing about the firmware: `lm3s6965evb` (the M3
/// machine) reports that the firmware never started one of its timers.
pub const KNOWN_QEMU_NOISE: &[&str] = &["Timer with period zero, disabling"];

/// Whether a line of QEMU's stderr is one of [`KNOWN_QEMU_NOISE`] (with or without QEMU's
/// `qemu-system-arm: ` prefix).
pub fn is_known_noise(line: &[u8]) -> bool {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end();
    let line = line
        .strip_prefix(QEMU)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(line);
    KNOWN_QEMU_NOISE.contains(&line)
}

/// Copies `stderr` to `out` line by line, leaving out [`KNOWN_QEMU_NOISE`].
fn pass_stderr_through(stderr: impl Read, out: &mut impl Write) -> std::io::Result<()> {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if !is_known_noise(&line) {
            out.write_all(&line)?;
            out.flush()?;
        }
    }
}

/// How long a firmware run may take before it is killed and reported as hung, unless
/// `TINYRNN_QEMU_TIMEOUT_SECS` (or the older `XTASK_QEMU_TIMEOUT_SECS`) says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The QEMU time-out: `TINYRNN_QEMU_TIMEOUT_SECS`, `XTASK_QEMU_TIMEOUT_SECS` or
/// [`DEFAULT_TIMEOUT`].
pub fn timeout() -> Result<Duration> {
    for var in ["TINYRNN_QEMU_TIMEOUT_SECS", "XTASK_QEMU_TIMEOUT_SECS"] {
        if let Ok(secs) = std::env::var(var) {
            return secs
                .trim()
                .parse()
                .map(Duration::from_secs)
                .with_context(|| format!("{var}=`{secs}` is not a whole number"));
        }
    }
    Ok(DEFAULT_TIMEOUT)
}

/// Fails with the install hint when `qemu-system-arm` is not on PATH.
pub fn ensure_qemu() -> Result<()> {
    if super::build::on_path(QEMU) {
        Ok(())
    } else {
        bail!("`{QEMU}` is not on PATH; {QEMU_INSTALL_HINT}")
    }
}

impl Machine {
    /// The machine for `target`.
    pub fn for_target(target: &str) -> Result<&'static Machine> {
        MACHINES
            .iter()
            .find(|machine| machine.target == target)
            .with_context(|| {
                let known: Vec<&str> = MACHINES.iter().map(|machine| machine.target).collect();
                format!(
                    "no QEMU machine for target `{target}`; known: {}",
                    known.join(", ")
                )
            })
    }

    /// QEMU's arguments up to (and including) `-kernel`; the ELF path follows.
    pub fn qemu_args(&self) -> Vec<&'static str> {
        vec![
            "-machine",
            self.machine,
            "-cpu",
            self.cpu,
            // Exact, repeatable SysTick readings: 1 instruction = 2^10 ns of guest time.
            "-icount",
            "shift=10",
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ]
    }

    /// The whole QEMU command line before the ELF path (the `runner` in
    /// `firmware/.cargo/config.toml`).
    pub fn runner_line(&self) -> String {
        let mut line = String::from(QEMU);
        for arg in self.qemu_args() {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }

    /// Executed instructions for a (64-bit) SysTick tick count.
    pub fn instructions_u64(&self, ticks: u64) -> f64 {
        ticks as f64 / self.ticks_per_instruction
    }

    /// Executed instructions for a SysTick tick count.
    pub fn instructions(&self, ticks: u32) -> f64 {
        f64::from(ticks) / self.ticks_per_instruction
    }
}

/// What a firmware run under QEMU produced.
pub struct QemuRun {
    /// QEMU's exit status: the firmware's semihosting exit code; `None` if QEMU was killed.
    pub exit_code: Option<i32>,
    /// Whether the run hit the time-out (and QEMU was killed).
    pub timed_out: bool,
    /// The decoded defmt log.
    pub lines: Vec<LogLine>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

/// Options of one QEMU run.
#[derive(Clone, Debug)]
pub struct RunOptions<'a> {
    /// Kill QEMU after this long.
    pub timeout: Duration,
    /// QEMU's working directory: semihosting file names are relative to it.
    pub cwd: Option<&'a Path>,
    /// Print each decoded log line as it arrives, after this prefix (`None`: quiet).
    pub echo: Option<&'a str>,
}

/// Runs `elf` on `target`'s QEMU machine, printing the decoded log as it arrives (prefixed
/// with `prefix`). QEMU is killed after `timeout`. QEMU's stderr is passed through, but for
/// [`KNOWN_QEMU_NOISE`].
pub fn run_in_qemu(elf: &Path, target: &str, timeout: Duration, prefix: &str) -> Result<QemuRun> {
    run_with(
        elf,
        target,
        &RunOptions {
            timeout,
            cwd: None,
            echo: Some(prefix),
        },
    )
}

/// Runs `elf` on `target`'s QEMU machine with `options`; QEMU's stderr is passed through, but
/// for [`KNOWN_QEMU_NOISE`].
pub fn run_with(elf: &Path, target: &str, options: &RunOptions<'_>) -> Result<QemuRun> {
    let machine = Machine::for_target(target)?;
    ensure_qemu()?;
    let bytes = std::fs::read(elf).with_context(|| format!("reading {}", elf.display()))?;
    let table = DefmtTable::from_elf(&bytes).with_context(|| format!("in {}", elf.display()))?;

    let mut command = Command::new(QEMU);
    command.args(machine.qemu_args()).arg(elf);
    if let Some(dir) = options.cwd {
        command.current_dir(dir);
    }
    if options.echo.is_some() {
        println!("$ {} {}", machine.runner_line(), elf.display());
    }
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{QEMU}`; {QEMU_INSTALL_HINT}"))?;
    let mut stdout = child.stdout.take().context("QEMU stdout")?;
    let stderr = child.stderr.take().context("QEMU stderr")?;

    thread::scope(|scope| {
        // Ends when QEMU closes its stderr; a failed write to our own stderr loses nothing
        // the run's result depends on.
        scope.spawn(|| pass_stderr_through(stderr, &mut std::io::stderr().lock()).ok());
        let reader = scope.spawn(|| -> Result<Vec<LogLine>> {
            let mut stream = table.stream();
            let mut lines = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = stdout.read(&mut chunk).context("reading QEMU stdout")?;
                if n == 0 {
                    return Ok(lines);
                }
                for line in stream.feed(&chunk[..n])? {
                    if let Some(prefix) = options.echo {
                        println!("{prefix}{line}");
                    }
                    lines.push(line);
                }
            }
        });

        let (status, timed_out) = wait_with_timeout(&mut child, options.timeout)?;
        let lines = reader.join().expect("defmt reader thread panicked")?;
        let exit_code = status.code();
        Ok(QemuRun {
            exit_code,
            timed_out,
            lines,
            elapsed: started.elapsed(),
        })
    })
}

/// Waits for `child`, killing it after `timeout`. Returns its status and whether it was killed.
fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Result<(ExitStatus, bool)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("waiting for QEMU")? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            child.kill().context("killing QEMU after the time-out")?;
            let status = child.wait().context("waiting for killed QEMU")?;
            return Ok((status, true));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `elf` and checks that QEMU exits with `expected` within the time-out.
pub fn run_expecting(elf: &Path, target: &str, expected: i32, prefix: &str) -> Result<QemuRun> {
    let timeout = timeout()?;
    let run = run_in_qemu(elf, target, timeout, prefix)?;
    if run.timed_out {
        bail!(
            "{} on {target} timed out after {} s (QEMU killed; firmware hung?)",
            elf.display(),
            timeout.as_secs()
        );
    }
    match run.exit_code {
        Some(code) if code == expected => Ok(run),
        Some(code) => bail!(
            "{} on {target} exited with status {code}, expected {expected} \
             (101 = panic, 102 = HardFault, 103 = unexpected exception, 1 = check failed)",
            elf.display()
        ),
        None => bail!("{} on {target}: QEMU was killed by a signal", elf.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `runner` lines in `firmware/.cargo/config.toml` run the same QEMU command as xtask.
    #[test]
    fn firmware_cargo_config_runners_match_the_machine_table() {
        let config =
            std::fs::read_to_string(super::super::firmware_dir().join(".cargo/config.toml"))
                .expect("read firmware/.cargo/config.toml");
        for machine in MACHINES {
            let section = format!("[target.{}]", machine.target);
            let start = config
                .find(&section)
                .unwrap_or_else(|| panic!("no {section} in firmware/.cargo/config.toml"));
            let runner = format!("runner = \"{}\"", machine.runner_line());
            // The `runner` key of this section (other keys and comments may come first).
            let runner_line = config[start + section.len()..]
                .lines()
                .map(str::trim)
                .take_while(|line| !line.starts_with('['))
                .find(|line| line.starts_with("runner"));
            assert_eq!(
                runner_line,
                Some(runner.as_str()),
                "runner for {}",
                machine.target
            );
        }
    }

    #[test]
    fn the_known_timer_line_is_dropped_and_other_stderr_passes_through() {
        assert!(is_known_noise(b"Timer with period zero, disabling\n"));
        assert!(is_known_noise(
            b"qemu-system-arm: Timer with period zero, disabling\r\n"
        ));
        assert!(!is_known_noise(
            b"qemu-system-arm: -kernel x: No such file\n"
        ));
        assert!(!is_known_noise(
            b"Timer with period zero, disabling and more\n"
        ));
        let stderr: &[u8] = b"Timer with period zero, disabling\nreal error \xff\n\
            Timer with period zero, disabling\nlast line without newline";
        let mut out = Vec::new();
        pass_stderr_through(stderr, &mut out).expect("copy");
        assert_eq!(out, b"real error \xff\nlast line without newline");
    }

    #[test]
    fn instruction_conversion_uses_the_machine_factor() {
        let m4 = Machine::for_target("thumbv7em-none-eabihf").unwrap();
        assert_eq!(m4.instructions(256), 10.0);
        assert!(Machine::for_target("x86_64-unknown-linux-gnu").is_err());
    }
}
