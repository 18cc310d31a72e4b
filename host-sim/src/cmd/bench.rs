//! `tinyrnn bench`: instructions per step, flash and RAM of RNN/LSTM/GRU ×
//! f32/f32-fast/q15/w8a16 × H ∈ {16, 32, 64} (I = 6) on each target, measured under QEMU.

use anyhow::Result;
use serde::Serialize;

use crate::export::F32_FAST;
use crate::target::bench::cases;
use crate::target::verify::{run_cases, PreparedCase, RunCasesOptions};

/// Arguments of `tinyrnn bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Target triple, comma-separated triples, or `all`.
    #[arg(long, default_value = "all")]
    pub target: Vec<String>,
    /// Print a JSON list of result objects instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Show cargo's output and the firmware's log.
    #[arg(long, short)]
    pub verbose: bool,
    /// Only models whose cell, format (f32, f32-fast, q15, w8a16) or hidden size are listed
    /// (e.g. `lstm,q15,32`); every category that has a listed value must match.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Put every model of a target in one firmware build (shared, size-generic kernels).
    #[arg(long)]
    pub shared: bool,
}

/// Does a benchmark case pass the `--only` filter?
fn selected(case: &PreparedCase, only: &[String]) -> bool {
    let hidden = case
        .hidden
        .first()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let categories: [(&[&str], &str); 3] = [
        (&["rnn", "lstm", "gru"], case.cell.as_str()),
        (&["f32", F32_FAST, "q15", "w8a16"], case.format.as_str()),
        (&["16", "32", "64"], hidden.as_str()),
    ];
    categories.iter().all(|(values, actual)| {
        let wanted: Vec<&String> = only
            .iter()
            .filter(|o| values.contains(&o.as_str()))
            .collect();
        wanted.is_empty() || wanted.iter().any(|w| w.as_str() == *actual)
    })
}

/// One `--json` row.
#[derive(Serialize)]
struct Row {
    target: String,
    cell: String,
    format: String,
    input: usize,
    hidden: usize,
    instructions_per_step: f64,
    flash_bytes: u64,
    flash_weights_bytes: u64,
    flash_code_bytes: u64,
    ram_bytes: u64,
    state_bytes: u64,
    stack_bytes: u64,
}

/// Entry point.
pub fn main(args: Args) -> Result<()> {
    let targets = crate::target::parse_targets(&args.target)?;
    let timeout = crate::target::qemu::timeout()?;
    let mut rows = Vec::new();
    for target in targets {
        let mut all = cases(crate::target::has_fpu(target))?;
        all.retain(|c| selected(c, &args.only));
        // One build per hidden size: each (cell, numeric) kernel then serves a single size,
        // which the compiler specialises as it does in a firmware holding one model. (With
        // every size in one build the kernels are shared and each step costs more; see
        // `--shared`.)
        let groups: Vec<Vec<&PreparedCase>> = if args.shared {
            if crate::target::has_fpu(target) {
                vec![all.iter().collect()]
            } else {
                // 256 KB of flash cannot hold every model of M0/M3: one build per format.
                ["q15", "w8a16"]
                    .iter()
                    .map(|f| all.iter().filter(|c| c.format == *f).collect())
                    .collect()
            }
        } else {
            let mut sizes: Vec<&Vec<usize>> = all.iter().map(|c| &c.hidden).collect();
            sizes.sort();
            sizes.dedup();
            sizes
                .iter()
                .map(|h| all.iter().filter(|c| &&c.hidden == h).collect())
                .collect()
        };
        let mut results = Vec::new();
        for group in groups {
            let group: Vec<PreparedCase> =
                group.into_iter().map(PreparedCase::clone_case).collect();
            let (rows, built) = run_cases(
                &group,
                target,
                RunCasesOptions {
                    bin: "bench",
                    compare: false,
                    verbose: args.verbose,
                    timeout,
                },
            )?;
            if !args.json {
                eprintln!(
                    "{target}: {} model(s), firmware built in {:.1} s",
                    rows.len(),
                    built.elapsed.as_secs_f64()
                );
            }
            results.extend(rows);
        }
        rows.extend(results.into_iter().map(|r| Row {
            target: r.target,
            cell: r.cell,
            format: r.format,
            input: r.input,
            hidden: r.hidden,
            instructions_per_step: r.instructions_per_step,
            flash_bytes: r.flash_bytes,
            flash_weights_bytes: r.flash_weights_bytes,
            flash_code_bytes: r.flash_code_bytes,
            ram_bytes: r.ram_bytes,
            state_bytes: r.state_bytes,
            stack_bytes: r.stack_bytes,
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "| target | cell | format | I | H | instructions/step | weights (B) | flash (B) | RAM (B) | state (B) | stack (B) |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            r.target,
            r.cell,
            r.format,
            r.input,
            r.hidden,
            r.instructions_per_step,
            r.flash_weights_bytes,
            r.flash_bytes,
            r.ram_bytes,
            r.state_bytes,
            r.stack_bytes
        );
    }
    println!(
        "\nflash = weights + code shared by every model of the build (runtime, harness, kernels); \
         RAM = static RAM with only this model's state; stack = high-water of one step. \
         Executed instructions under QEMU (-icount), not cycles."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::cases::CaseSource;

    fn case(cell: &str, format: &str, hidden: usize) -> PreparedCase {
        PreparedCase {
            name: format!("{cell} h{hidden} {format}"),
            cell: cell.into(),
            format: format.into(),
            input: 6,
            hidden: vec![hidden],
            input_words: Vec::new(),
            expected: Vec::new(),
            sequence_lengths: Vec::new(),
            source: CaseSource {
                name: String::new(),
                source: String::new(),
                stream: false,
            },
        }
    }

    #[test]
    fn only_tells_f32_from_f32_fast() {
        let only = |list: &str| -> Vec<String> { list.split(',').map(String::from).collect() };
        let (accurate, fast) = (case("lstm", "f32", 32), case("lstm", F32_FAST, 32));
        assert!(selected(&accurate, &only("lstm,f32")));
        assert!(!selected(&fast, &only("lstm,f32")));
        assert!(selected(&fast, &only("lstm,f32-fast,32")));
        assert!(!selected(&accurate, &only("f32-fast")));
        assert!(selected(&fast, &only("f32,f32-fast")));
        assert!(!selected(
            &case("gru", F32_FAST, 32),
            &only("lstm,f32-fast")
        ));
    }
}
