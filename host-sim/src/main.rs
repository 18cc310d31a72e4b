//! `tinyrnn`: the host simulator's command line.

use clap::{Parser, Subcommand};
use tinyrnn_sim::cmd;

/// Run, train, quantise, export and verify recurrent models for microcontrollers.
#[derive(Parser)]
#[command(name = "tinyrnn", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a model over a CSV sequence, one output row per timestep.
    Run(cmd::run::Args),
    /// Calibrate an f32 model on data and write a q15 or w8a16 model.
    Quantize(cmd::quantize::Args),
    /// Write a model (and golden data) as Rust source for the firmware.
    Export(cmd::export::Args),
    /// Train an RNN/LSTM/GRU classifier on a labelled dataset (BPTT + Adam).
    Train(cmd::train::Args),
    /// Evaluate a classifier (f32, q15, w8a16): accuracy, per-class metrics, confusion matrix.
    Eval(cmd::eval::Args),
    /// Build the firmware, run models under QEMU and compare every step with the host.
    Verify(cmd::verify::Args),
    /// Instructions per step, flash and RAM of RNN/LSTM/GRU models on each target (QEMU).
    Bench(cmd::bench::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => cmd::run::main(a),
        Command::Quantize(a) => cmd::quantize::main(a),
        Command::Export(a) => cmd::export::main(a),
        Command::Train(a) => cmd::train::main(a),
        Command::Eval(a) => cmd::eval::main(a),
        Command::Verify(a) => cmd::verify::main(a),
        Command::Bench(a) => cmd::bench::main(a),
    };
    if let Err(e) = result {
        // One line, the whole context chain, no backtrace.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
