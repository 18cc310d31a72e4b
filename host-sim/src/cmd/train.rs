//! `tinyrnn train`: train an RNN/LSTM/GRU classifier on a labelled dataset.
//!
//! Reads a `.ts`/`.csv` dataset (see [`crate::dataset`]), normalises every channel with the mean
//! and standard deviation of the training split, trains with BPTT + Adam ([`crate::train`]) and
//! writes the best weights as a safetensors model file (`rnn.*`, `head.*` keys; class names,
//! normalisation and cell kind in the metadata) that `tinyrnn run` and PyTorch both load.
//!
//! The defaults are [`TrainConfig::new`]'s: GRU, 32 hidden units, 1 layer, 100 epochs (up to
//! 200 while the training loss is above 0.01), batch
//! 8, constant Adam lr 5e-3, gradient norm clipped to 1.0, no validation split, seed 0, the
//! per-cell initialisation chosen by measurement, no augmentation, and a run still near chance
//! after 20 epochs restarted from a seed derived from `--seed` (up to 3 times; said on stderr
//! and in `--json`). The README's training table gives the test accuracies they reach over
//! seeds 0–4 on the bundled datasets; `host-sim/scripts/seeds_table.sh` reruns it.
//! Without a validation split the saved weights are those of the epoch with the lowest loss on
//! the whole training set (never the test set), so a late loss spike is not what gets saved.
//! `--val-split 0.2` holds out a stratified 20 % for early stopping (`--patience`) and keeps
//! the best validation epoch.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cmd::{load_options, FillMissing};
use crate::dataset::{self, Dataset, Labels, LoadOptions};
use crate::model_file::{meta_keys, CellKind, ModelMeta, Nonlinearity, Normalization};
use crate::output_file::{refuse_overlaps, OutputFile};
use crate::quote::quote;
use crate::train::{
    self, Augment, CollapseCheck, EpochRecord, GateBias, InitConfig, LrSchedule, RecurrentInit,
    Sample, Target, TrainConfig, TrainEvent,
};

/// Recurrent cell for `--cell`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CellArg {
    /// Gated recurrent unit (PyTorch `nn.GRU`).
    Gru,
    /// Long short-term memory (PyTorch `nn.LSTM`).
    Lstm,
    /// Elman RNN (PyTorch `nn.RNN`), see `--nonlinearity`.
    Rnn,
}

/// Nonlinearity for `--nonlinearity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NonlinearityArg {
    /// `tanh`.
    Tanh,
    /// `relu`.
    Relu,
}

/// Learning-rate schedule for `--schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    /// `--lr` throughout.
    Constant,
    /// Linear warm-up over `--warmup` epochs, then cosine decay from `--lr` to 0 at the last
    /// epoch, per mini-batch.
    Cosine,
    /// `--lr` halved whenever the loss that selects the saved epoch has not improved for more
    /// than `--plateau-patience` epochs.
    Plateau,
}

/// Recurrent initialisation for `--recurrent-init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecurrentInitArg {
    /// PyTorch's `U(-1/√H, 1/√H)`.
    Uniform,
    /// A random orthogonal matrix per gate block.
    Orthogonal,
}

/// Arguments of `tinyrnn train`.
#[derive(Parser, Debug, Clone)]
#[command(about = "Train an RNN/LSTM/GRU classifier (BPTT + Adam) and save it as safetensors")]
pub struct Args {
    /// Training data: a UEA/UCR `.ts` file, a `.csv` dataset or a directory of CSV sequences.
    #[arg(long, value_name = "PATH")]
    pub train: PathBuf,
    /// Test data (same format and channels), evaluated once with the saved model (never used
    /// for selection).
    #[arg(long, value_name = "PATH")]
    pub test: Option<PathBuf>,
    /// Recurrent cell.
    #[arg(long, value_enum, default_value_t = CellArg::Gru)]
    pub cell: CellArg,
    /// Nonlinearity of `--cell rnn`.
    #[arg(long, value_enum, default_value_t = NonlinearityArg::Tanh)]
    pub nonlinearity: NonlinearityArg,
    /// Hidden units per layer.
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
    /// Stacked recurrent layers.
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    /// Number of epochs (fewer with early stopping).
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// Stop after `--epochs` even if the training split is not fit yet. By default a run goes
    /// on, up to twice `--epochs`, until the training loss is below 0.01 (not with `--schedule
    /// cosine`, whose rate is 0 by then).
    #[arg(long)]
    pub no_extend: bool,
    /// Sequences per mini-batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Adam learning rate (the peak rate of `--schedule cosine`).
    #[arg(long, default_value_t = 5e-3)]
    pub lr: f32,
    /// Learning-rate schedule [default: constant].
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
    /// Warm-up epochs of `--schedule cosine` (learning rate rising linearly to `--lr`).
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Epochs without improvement before `--schedule plateau` halves the learning rate.
    #[arg(long, default_value_t = 10)]
    pub plateau_patience: usize,
    /// Added to the initial bias of the GRU update gate / LSTM forget gate [default: 1 for
    /// LSTM, 0 otherwise]. A
    /// positive value makes the initial network keep its state longer, so that gradients
    /// from the last step reach early steps of long sequences.
    #[arg(long, allow_negative_numbers = true)]
    pub gate_bias: Option<f32>,
    /// Chrono initialisation of the GRU update gate / LSTM forget gate bias: time scales
    /// spread from one step to the mean training length.
    #[arg(long, conflicts_with = "gate_bias")]
    pub chrono: bool,
    /// Lowest initial spread of the first layer's input weights: PyTorch's `U(±1/√H)` is
    /// scaled up to `U(±√(3/I)·S)` for `I` channels where that is wider, so that each gate's
    /// input part starts with a standard deviation of at least S for normalised data
    /// [default: 0.25].
    #[arg(long, value_name = "S")]
    pub input_std: Option<f32>,
    /// Initialisation of the recurrent weights [default: uniform].
    #[arg(long, value_enum)]
    pub recurrent_init: Option<RecurrentInitArg>,
    /// Augment the training series anew every epoch: a comma-separated list of `jitter`,
    /// `scale`, `warp`, `crop`, each optionally `=STRENGTH` (jitter: noise σ relative to the
    /// channel's σ, default 0.03; scale: σ of the log-gain per series and channel, 0.1; warp:
    /// σ of the log-speed of a smooth time warp, 0.2; crop: fraction of the series cut away,
    /// 0.1). Off by default.
    #[arg(long, value_name = "LIST")]
    pub augment: Option<Augment>,
    /// Restart a run whose training accuracy is still near chance after
    /// `--collapse-epochs` epochs, from a seed derived from `--seed`, at most this many times
    /// (0: never) [default: 3].
    #[arg(long)]
    pub restarts: Option<usize>,
    /// Epoch at which a run is checked for a collapse [default: 20].
    #[arg(long)]
    pub collapse_epochs: Option<usize>,
    /// Seed for the initial weights, the validation split and the shuffles.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Many-to-many: a loss at every step (per-step labels; a per-series label is used at
    /// every step of its series). Default: many-to-one, label read at the last step.
    #[arg(long)]
    pub per_step: bool,
    /// Truncated BPTT: gradients flow back at most K steps (windows aligned to the end of each
    /// sequence). Default: full BPTT.
    #[arg(long, value_name = "K")]
    pub bptt_window: Option<usize>,
    /// Fraction of each class held out for validation and early stopping (0 disables both and
    /// keeps the epoch with the lowest loss on the whole training set). Off by default: on small datasets such as BasicMotions (40
    /// series) holding out 20 % costs more test accuracy than early stopping gains.
    #[arg(long, default_value_t = 0.0)]
    pub val_split: f64,
    /// Stop after this many epochs without a lower validation loss; the best epoch is kept.
    #[arg(long, default_value_t = 40)]
    pub patience: usize,
    /// Clip the global gradient norm to this value (0 disables clipping).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f32,
    /// Fill missing values (`?`/`NaN`) of `.ts` files instead of rejecting them.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub fill_missing: Option<FillMissing>,
    /// Output model file (safetensors). Checked before training: its directory must exist and
    /// be writable; the file is replaced only once training has finished.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Write training curves (loss and accuracy per epoch) as SVG (checked like `--out`).
    #[arg(long, value_name = "PATH")]
    pub curves: Option<PathBuf>,
    /// Print a JSON summary on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
}

/// The `--json` summary. Accuracies are fractions in [0, 1]; `null` when there is no such data.
#[derive(serde::Serialize, Debug)]
pub struct Summary {
    /// Accuracy of the saved model on the training split.
    pub train_accuracy: f64,
    /// Accuracy of the saved model on the validation split.
    pub val_accuracy: Option<f64>,
    /// Accuracy of the saved model on `--test`.
    pub test_accuracy: Option<f64>,
    /// Epochs run.
    pub epochs: usize,
    /// Epoch whose weights were saved (1-based).
    pub best_epoch: usize,
    /// Wall time of the whole command, seconds.
    pub seconds: f64,
    /// Training throughput: sequence-steps through forward + backward + Adam per second of
    /// training time (validation and loading excluded).
    pub steps_per_second: f64,
    /// Seed of the run whose model was saved (`--seed` unless a collapsed run restarted).
    pub seed: u64,
    /// Collapsed runs restarted before it.
    pub restarts: usize,
}

/// Labels of a dataset in training form.
enum Targets {
    Last(Vec<usize>),
    PerStep(Vec<Vec<usize>>),
}

impl Targets {
    fn target(&self, i: usize) -> Target<'_> {
        match self {
            Targets::Last(y) => Target::Last(y[i]),
            Targets::PerStep(y) => Target::PerStep(&y[i]),
        }
    }
}

fn load(path: &Path, what: &str, options: &LoadOptions) -> Result<Dataset> {
    let ds = dataset::load_with(path, options).with_context(|| format!("loading {what} data"))?;
    if ds.is_empty() {
        bail!("{}: the {what} data has no series", path.display());
    }
    if let Some(i) = ds.series.iter().position(|s| s.steps == 0) {
        bail!("{}: series {} has no steps", path.display(), i + 1);
    }
    Ok(ds)
}

/// Labels in training form, with class indices mapped into `classes` by name.
fn targets(ds: &Dataset, path: &Path, classes: &[String], per_step: bool) -> Result<Targets> {
    let map = |k: usize| -> Result<usize> {
        let name = ds.class_names.get(k).map(String::as_str).unwrap_or("?");
        classes.iter().position(|c| c == name).with_context(|| {
            format!(
                "{}: class {} does not occur in the training data",
                path.display(),
                quote(name)
            )
        })
    };
    match (&ds.labels, per_step) {
        (None, _) => bail!(
            "{}: the data has no labels; training needs class labels",
            path.display()
        ),
        (Some(Labels::PerSeries(y)), false) => Ok(Targets::Last(
            y.iter().map(|&k| map(k)).collect::<Result<_>>()?,
        )),
        (Some(Labels::PerSeries(y)), true) => Ok(Targets::PerStep(
            y.iter()
                .zip(&ds.series)
                .map(|(&k, s)| map(k).map(|c| vec![c; s.steps]))
                .collect::<Result<_>>()?,
        )),
        (Some(Labels::PerStep(_)), false) => bail!(
            "{}: the data has a label per step; pass --per-step to train many-to-many",
            path.display()
        ),
        (Some(Labels::PerStep(y)), true) => Ok(Targets::PerStep(
            y.iter()
                .map(|v| v.iter().map(|&k| map(k)).collect::<Result<Vec<_>>>())
                .collect::<Result<_>>()?,
        )),
    }
}

fn samples<'a>(ds: &'a Dataset, t: &'a Targets, idx: &[usize]) -> Vec<Sample<'a>> {
    idx.iter()
        .map(|&i| Sample {
            xs: &ds.series[i].values,
            steps: ds.series[i].steps,
            target: t.target(i),
        })
        .collect()
}

fn check_args(a: &Args) -> Result<()> {
    if a.hidden == 0 {
        bail!("--hidden must be at least 1");
    }
    if a.layers == 0 {
        bail!("--layers must be at least 1");
    }
    if a.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if !(a.lr.is_finite() && a.lr > 0.0) {
        bail!("--lr must be a positive number, got {}", a.lr);
    }
    if !(0.0..1.0).contains(&a.val_split) {
        bail!("--val-split must be in [0, 1), got {}", a.val_split);
    }
    if a.bptt_window == Some(0) {
        bail!("--bptt-window must be at least 1");
    }
    if !(a.clip.is_finite() && a.clip >= 0.0) {
        bail!(
            "--clip must be 0 (off) or a positive number, got {}",
            a.clip
        );
    }
    if let Some(b) = a.gate_bias.filter(|b| !b.is_finite()) {
        bail!("--gate-bias must be a finite number, got {b}");
    }
    if let Some(v) = a.input_std.filter(|v| !(v.is_finite() && *v > 0.0)) {
        bail!("--input-std must be a positive number, got {v}");
    }
    if a.collapse_epochs == Some(0) {
        bail!("--collapse-epochs must be at least 1");
    }
    if a.cell != CellArg::Rnn && a.nonlinearity == NonlinearityArg::Relu {
        bail!("--nonlinearity applies to --cell rnn only");
    }
    Ok(())
}

/// The training configuration `a` asks for: [`TrainConfig::new`]'s defaults for `kind`, with
/// what the flags change (`validation`: whether there is a validation split).
fn config(a: &Args, kind: CellKind, validation: bool) -> TrainConfig {
    let defaults = TrainConfig::new(kind);
    TrainConfig {
        kind,
        hidden: a.hidden,
        layers: a.layers,
        epochs: a.epochs,
        extend_until_fit: !a.no_extend && defaults.extend_until_fit,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        bptt_window: a.bptt_window,
        clip: (a.clip > 0.0).then_some(a.clip),
        patience: validation.then_some(a.patience.max(1)),
        schedule: match a.schedule {
            None => defaults.schedule,
            Some(ScheduleArg::Constant) => LrSchedule::Constant,
            Some(ScheduleArg::Cosine) => LrSchedule::Cosine {
                warmup_epochs: a.warmup,
            },
            Some(ScheduleArg::Plateau) => LrSchedule::Plateau {
                factor: 0.5,
                patience: a.plateau_patience,
            },
        },
        init: InitConfig {
            recurrent: match a.recurrent_init {
                None => defaults.init.recurrent,
                Some(RecurrentInitArg::Uniform) => RecurrentInit::Uniform,
                Some(RecurrentInitArg::Orthogonal) => RecurrentInit::Orthogonal,
            },
            gate_bias: match (a.chrono, a.gate_bias) {
                (true, _) => GateBias::Chrono,
                (false, Some(b)) => GateBias::Add(b),
                (false, None) => defaults.init.gate_bias,
            },
            input_std: a.input_std.or(defaults.init.input_std),
        },
        augment: a.augment.unwrap_or(defaults.augment),
        collapse: match a.restarts {
            Some(0) => None,
            restarts => {
                let d = defaults.collapse.unwrap_or(CollapseCheck::DEFAULT);
                Some(CollapseCheck {
                    after_epochs: a.collapse_epochs.unwrap_or(d.after_epochs),
                    max_restarts: restarts.unwrap_or(d.max_restarts),
                    ..d
                })
            }
        },
    }
}

/// Runs `tinyrnn train`.
pub fn main(args: Args) -> Result<()> {
    let started = Instant::now();
    check_args(&args)?;
    // Outputs first: a path that cannot be written, or that would replace an input, fails now
    // rather than after the training it would have thrown away.
    let mut outputs = vec![("--out", args.out.as_path())];
    if let Some(c) = &args.curves {
        outputs.push(("--curves", c.as_path()));
    }
    let mut inputs = vec![("--train", args.train.as_path())];
    if let Some(t) = &args.test {
        inputs.push(("--test", t.as_path()));
    }
    refuse_overlaps(&outputs, &inputs)?;
    let out = OutputFile::create("--out", &args.out)?;
    let curves_out = match &args.curves {
        Some(p) => Some(OutputFile::create("--curves", p)?),
        None => None,
    };
    let options = load_options(args.fill_missing);
    let nonlinearity = match args.nonlinearity {
        NonlinearityArg::Tanh => Nonlinearity::Tanh,
        NonlinearityArg::Relu => Nonlinearity::Relu,
    };
    let kind = match args.cell {
        CellArg::Gru => CellKind::Gru,
        CellArg::Lstm => CellKind::Lstm,
        CellArg::Rnn => CellKind::Rnn(nonlinearity),
    };

    let mut train_ds = load(&args.train, "training", &options)?;
    let classes = train_ds.class_names.clone();
    let train_t = targets(&train_ds, &args.train, &classes, args.per_step)?;
    if classes.is_empty() {
        bail!("{}: the data declares no classes", args.train.display());
    }
    let mut test_ds = match &args.test {
        Some(p) => {
            let d = load(p, "test", &options)?;
            if d.channels != train_ds.channels {
                bail!(
                    "{}: {} channels per step, but the training data has {}",
                    p.display(),
                    d.channels,
                    train_ds.channels
                );
            }
            Some(d)
        }
        None => None,
    };
    let test_t = match (&test_ds, &args.test) {
        (Some(d), Some(p)) => Some(targets(d, p, &classes, args.per_step)?),
        _ => None,
    };

    // Validation split: stratified by class for per-series labels, plain random otherwise.
    let strata: Vec<usize> = match &train_ds.labels {
        Some(Labels::PerSeries(y)) => y.clone(),
        _ => vec![0; train_ds.len()],
    };
    let (tr_idx, va_idx) = train::split_validation(&strata, args.val_split, args.seed);
    if tr_idx.is_empty() {
        bail!("no training series left after the validation split");
    }

    // Normalisation statistics from the training split only.
    let stats_ds = Dataset {
        series: tr_idx.iter().map(|&i| train_ds.series[i].clone()).collect(),
        labels: None,
        class_names: vec![],
        channels: train_ds.channels,
        name: String::new(),
    };
    let (mean, std) = dataset::channel_stats(&stats_ds);
    drop(stats_ds);
    train_ds
        .try_normalize(&mean, &std)
        .context("normalising the training data")?;
    if let Some(d) = &mut test_ds {
        d.try_normalize(&mean, &std)
            .context("normalising the test data")?;
    }

    let train_set = samples(&train_ds, &train_t, &tr_idx);
    let val_set = samples(&train_ds, &train_t, &va_idx);
    let cfg = config(&args, kind, !val_set.is_empty());

    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let pb = ProgressBar::new(args.epochs as u64);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} epoch {pos}/{len} [{bar:30}] {msg} ({elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb
    });
    let every = if args.epochs <= 50 { 1 } else { 10 };
    // `is_multiple_of` needs Rust 1.87; the workspace's MSRV is 1.85.
    #[allow(unknown_lints, clippy::manual_is_multiple_of)]
    let mut on_event = |e: TrainEvent<'_>| match e {
        TrainEvent::Epoch(r) => {
            let val = match (r.val_loss, r.val_accuracy) {
                (Some(l), Some(a)) => format!(", val loss {l:.4} acc {:.1}%", 100.0 * a),
                _ => String::new(),
            };
            let line = format!(
                "loss {:.4} acc {:.1}%{val}",
                r.train_loss,
                100.0 * r.train_accuracy
            );
            // Past `--epochs` the run is extended until the training split is fit.
            let of = if r.epoch > args.epochs {
                format!("{} + extension", args.epochs)
            } else {
                args.epochs.to_string()
            };
            match &bar {
                Some(pb) => {
                    if r.epoch as u64 > pb.length().unwrap_or(0) {
                        pb.set_length(r.epoch as u64);
                    }
                    pb.set_position(r.epoch as u64);
                    pb.set_message(line);
                }
                None => {
                    if r.epoch % every == 0 || r.epoch == 1 {
                        eprintln!("epoch {:>4}/{of}: {line}", r.epoch);
                    }
                }
            }
        }
        TrainEvent::Restart(r) => {
            let line = format!(
                "seed {}: training accuracy {:.1}% after {} epochs, below {:.1}% (near chance): \
                 collapsed; restarting with seed {}",
                r.seed,
                100.0 * r.train_accuracy,
                r.epoch,
                100.0 * r.threshold,
                r.next_seed
            );
            match &bar {
                Some(pb) => {
                    pb.println(line);
                    pb.set_position(0);
                }
                None => eprintln!("{line}"),
            }
        }
    };
    let outcome = train::train(
        &cfg,
        train_ds.channels,
        classes.len(),
        &train_set,
        &val_set,
        &mut on_event,
    )?;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }

    // Save the best weights with everything needed to use them.
    let mut extra = std::collections::BTreeMap::new();
    extra.insert(
        "tinyrnn.training".to_string(),
        serde_json::json!({
            "epochs": outcome.history.len(),
            "best_epoch": outcome.best_epoch,
            "per_step": args.per_step,
            "seed": args.seed,
        })
        .to_string(),
    );
    let meta = ModelMeta {
        class_names: classes.clone(),
        normalization: Some(Normalization { mean, std }),
        extra,
    };
    debug_assert!(!meta.extra.contains_key(meta_keys::CELL));
    out.write_all(&outcome.net.to_float_model(meta).to_bytes()?)?;

    let net = &outcome.net;
    let train_acc = train::evaluate(net, &train_set).accuracy();
    let val_acc = (!val_set.is_empty()).then(|| train::evaluate(net, &val_set).accuracy());
    let test_acc = match (&test_ds, &test_t) {
        (Some(d), Some(t)) => {
            let all: Vec<usize> = (0..d.len()).collect();
            Some(train::evaluate(net, &samples(d, t, &all)).accuracy())
        }
        _ => None,
    };
    if let Some(out) = curves_out {
        let svg = render_curves(&outcome.history, outcome.best_epoch)
            .with_context(|| format!("{}: drawing the curves", out.path().display()))?;
        out.write_all(svg.as_bytes())?;
    }
    let summary = Summary {
        train_accuracy: train_acc,
        val_accuracy: val_acc,
        test_accuracy: test_acc,
        epochs: outcome.history.len(),
        best_epoch: outcome.best_epoch,
        seconds: started.elapsed().as_secs_f64(),
        steps_per_second: outcome.trained_steps as f64 / outcome.train_seconds.max(1e-9),
        seed: outcome.seed,
        restarts: outcome.restarts.len(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        let pct = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{:.1}%", 100.0 * a));
        println!(
            "{} {}x{}: train {}, val {}, test {} (best epoch {} of {}), {:.1} s, {:.0} steps/s -> {}",
            kind.name(),
            args.layers,
            args.hidden,
            pct(Some(train_acc)),
            pct(val_acc),
            pct(test_acc),
            summary.best_epoch,
            summary.epochs,
            summary.seconds,
            summary.steps_per_second,
            args.out.display()
        );
    }
    Ok(())
}

/// Two stacked charts as SVG text: loss (train, validation) and accuracy (train, validation) per
/// epoch, with the saved epoch marked.
fn render_curves(history: &[EpochRecord], best_epoch: usize) -> Result<String> {
    let mut svg = String::new();
    draw_curves(&mut svg, history, best_epoch)?;
    Ok(svg)
}

fn draw_curves(svg: &mut String, history: &[EpochRecord], best_epoch: usize) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::with_string(svg, (800, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (top, bottom) = root.split_vertically(300);
    let n = history.len().max(2) as f64;
    let series = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let train_loss = series(&|r| Some(r.train_loss));
    let val_loss = series(&|r| r.val_loss);
    let train_acc = series(&|r| Some(r.train_accuracy));
    let val_acc = series(&|r| r.val_accuracy);
    let max_loss = train_loss
        .iter()
        .chain(&val_loss)
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(0.1, f64::max);

    // (area, quantity, y maximum, [(label, points, colour); 2])
    type Lines<'a> = [(&'a str, &'a Vec<(f64, f64)>, RGBColor); 2];
    let charts: [(&DrawingArea<SVGBackend<'_>, _>, &str, f64, Lines<'_>); 2] = [
        (
            &top,
            "loss",
            max_loss * 1.05,
            [("train", &train_loss, BLUE), ("validation", &val_loss, RED)],
        ),
        (
            &bottom,
            "accuracy",
            1.0,
            [("train", &train_acc, BLUE), ("validation", &val_acc, RED)],
        ),
    ];
    for (area, name, ymax, lines) in charts {
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{name} (saved epoch {best_epoch})"),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(1f64..n, 0f64..ymax)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(name)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (label, data, color) in lines {
            if data.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(data.iter().copied(), color))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .draw_series(LineSeries::new(
                [(best_epoch as f64, 0.0), (best_epoch as f64, ymax)],
                BLACK.mix(0.3),
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags' defaults are the library's: a `train` without options trains with
    /// [`TrainConfig::new`] for each cell.
    #[test]
    fn flag_defaults_are_the_library_defaults() {
        for (cell, kind) in [("gru", CellKind::Gru), ("lstm", CellKind::Lstm)] {
            let a =
                Args::try_parse_from(["train", "--train", "d.ts", "--out", "m", "--cell", cell])
                    .unwrap();
            let got = config(&a, kind, false);
            let want = TrainConfig::new(kind);
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{cell}");
        }
    }
}
