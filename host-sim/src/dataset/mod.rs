//! Datasets: UEA/UCR `.ts` files and CSV sequence files.
//!
//! [`load`] picks the reader from the path: a file ending in `.ts` (any case) is read as a
//! UEA/UCR `.ts` file, a file ending in `.csv` as a CSV dataset, and a directory as a directory of
//! CSV sequence files. Every error is one line that names the file, and the line (1-based), the
//! dimension or column (1-based) where that helps; bad input never panics.
//!
//! # The `.ts` format (UEA/UCR, as shipped by sktime/aeon)
//!
//! - Blank lines are ignored everywhere; lines starting with `#` are comments.
//! - Header tags, case-insensitive, each at most once, all before `@data`:
//!   `@problemName <name>` (becomes [`Dataset::name`]; defaults to the file stem),
//!   `@timeStamps true|false` (`true` is rejected: timestamped values are not supported),
//!   `@missing true|false`, `@univariate true|false`, `@dimensions <n>`,
//!   `@equalLength true|false`, `@seriesLength <n>`,
//!   `@classLabel true <label>...` / `@classLabel false`,
//!   `@targetLabel true|false` (`true` means regression, which is rejected as unsupported),
//!   and `@data`. An unknown tag is an error (it is usually a typo that would silently drop
//!   labels). Only `@data` is required; missing tags are inferred from the data.
//! - After `@data`, one series per line: dimensions separated by `:`, values by `,`, and, when
//!   `@classLabel true`, the class label after the last `:`. Labels are arbitrary strings (case
//!   preserved) and map to indices in the order `@classLabel` declares them
//!   ([`Labels::PerSeries`]); an undeclared label is an error.
//! - The number of dimensions of every series must match `@dimensions` (or 1 when
//!   `@univariate true`, or else the first series). All dimensions of one series must have the
//!   same length. Series may differ in length (`@equalLength false`); with `@equalLength true`
//!   every series must have `@seriesLength` steps (or, without it, as many as the first series).
//!   `@seriesLength` is not checked when `@equalLength` is `false` or absent.
//! - Missing values (`?` or `NaN`): by default ([`MissingPolicy::Error`]) they are an error that
//!   names `file:line: dimension d`, because a recurrent model cannot consume them. Impute them
//!   upstream, or load with [`MissingPolicy::FillForward`] via [`load_with`] (the
//!   `--fill-missing forward` flag of `tinyrnn train`, `eval` and `quantize`).
//! - Infinite values, values that are not numbers and timestamped values like `(1,2.0)` are
//!   errors. The reader streams the file line by line: memory is proportional to the data.
//! - A path ending in `.ts` that is a directory is an error saying so.
//!
//! # CSV
//!
//! Fields are split on `,` (no quoting) and trimmed; CRLF line ends are accepted; blank lines
//! are skipped. Values must be finite numbers (`NaN`/`inf` are errors, so are missing values).
//!
//! - **Sequence file** ([`read_sequence_csv`]): one row per timestep, one column per feature,
//!   no header. Every row has as many columns as the first.
//! - **Dataset file** (`load("x.csv")`): if the first row is all numbers, the file is a single
//!   sequence file and the dataset holds that one unlabelled series. Otherwise the first row is a
//!   header that must contain a `sequence` column (case-insensitive), may contain a `label`
//!   column, and every other column is a feature, in header order (at least one). The
//!   `sequence` value is an id (any non-empty string); the rows of one sequence are contiguous
//!   and series appear in file order. A `label` column gives one label per row
//!   ([`Labels::PerStep`], even when constant within each sequence: the trainer decides).
//! - **Dataset directory** (`load("dir/")`): one sequence file per series. If `dir/labels.csv`
//!   exists, it lists the series as rows `file,label` (an optional first row `file,label` is a
//!   header; `file` is relative to the directory); exactly the listed files are loaded, in that
//!   order, with [`Labels::PerSeries`]. Without `labels.csv`, every `*.csv` file in the
//!   directory is loaded, sorted by name, unlabelled.
//! - CSV class names are sorted: numerically if every label is an integer, otherwise by string
//!   (byte order). Map by name ([`Dataset::class_index`]) when comparing two datasets.
//!
//! # Both formats
//!
//! A UTF-8 byte-order mark at the start of a file is skipped. Error messages quote at most
//! [`crate::quote::MAX_QUOTED`] characters of the offending text.

mod csv;
mod ts;

pub use csv::{open_sequence_csv, read_sequence_csv, SequenceReader};

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

use crate::model_file::{MEAN_PER_STD, STD_MAX, STD_MIN};

/// One multichannel series: `steps` rows × `channels` columns, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// `steps * channels` values; value `c` of step `t` is at `t * channels + c`.
    pub values: Vec<f32>,
    /// Number of timesteps (rows).
    pub steps: usize,
    /// Number of channels (features per timestep).
    pub channels: usize,
}

impl Series {
    /// The `channels` values of timestep `t`.
    ///
    /// # Panics
    /// If `t >= self.steps` (like slice indexing).
    pub fn row(&self, t: usize) -> &[f32] {
        &self.values[t * self.channels..(t + 1) * self.channels]
    }

    /// Iterates over the timesteps, one `channels`-long slice per step.
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.values.chunks_exact(self.channels.max(1))
    }
}

/// Labels: one per series (classification from the final step) or one per timestep.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// One class index per series.
    PerSeries(Vec<usize>),
    /// One class index per timestep of each series (`labels[i].len() == series[i].steps`).
    PerStep(Vec<Vec<usize>>),
}

/// A set of series with the same channel count, optionally labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The series, in file order.
    pub series: Vec<Series>,
    /// Class indices into `class_names`, if the data is labelled.
    pub labels: Option<Labels>,
    /// Class names; a label `k` means `class_names[k]`. Empty when unlabelled.
    pub class_names: Vec<String>,
    /// Channels per timestep, the same for every series.
    pub channels: usize,
    /// `@problemName`, or the file / directory stem.
    pub name: String,
}

/// What to do with missing values (`?` / `NaN`) in a `.ts` file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissingPolicy {
    /// Reject the file, naming `file:line: dimension d` (the default).
    #[default]
    Error,
    /// Replace each missing value with the previous value of the same dimension of the same
    /// series; leading missing values take the first present value (backward fill). A
    /// dimension with no present value at all is still an error.
    FillForward,
}

/// Options for [`load_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Missing-value handling for `.ts` files (CSV files never accept missing values).
    pub missing: MissingPolicy,
}

/// Loads by extension: `.ts` (UEA/UCR) or `.csv`; a directory is a directory of CSV sequence
/// files. See the [module docs](self) for the formats.
pub fn load(path: &Path) -> Result<Dataset> {
    load_with(path, &LoadOptions::default())
}

/// [`load`] with options.
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Dataset> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if path.is_dir() {
        if ext.as_deref() == Some("ts") {
            bail!(
                "{}: is a directory, not a .ts file (give the path of the .ts file itself)",
                path.display()
            );
        }
        return csv::read_csv_dir(path);
    }
    match ext.as_deref() {
        Some("ts") => ts::read_ts(path, options.missing),
        Some("csv") => csv::read_csv_dataset(path),
        _ => bail!(
            "{}: unknown dataset format (expected a .ts file, a .csv file or a directory of .csv files)",
            path.display()
        ),
    }
}

/// The files [`load`] reads for `path`: the path itself, or for a dataset directory its
/// `labels.csv` and the sequence files it would load. Used to refuse an output that would
/// replace one of them.
pub fn source_files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        csv::dir_source_files(path)
    } else {
        vec![path.to_path_buf()]
    }
}

/// Per-channel mean/std over every timestep of every series (std of a constant channel → 1.0).
///
/// The std is the population standard deviation (divides by the number of timesteps),
/// accumulated in `f64`. A channel whose values are all equal, and every channel of an empty
/// dataset (mean 0), gets std 1.0 so that normalising never divides by zero.
pub fn channel_stats(ds: &Dataset) -> (Vec<f32>, Vec<f32>) {
    let c = ds.channels;
    let mut count = 0usize;
    let mut sum = vec![0f64; c];
    let mut min = vec![f32::INFINITY; c];
    let mut max = vec![f32::NEG_INFINITY; c];
    let rows = || {
        ds.series
            .iter()
            .filter(move |s| s.channels == c)
            .flat_map(|s| s.rows())
    };
    for row in rows() {
        count += 1;
        for (k, &v) in row.iter().enumerate() {
            sum[k] += f64::from(v);
            min[k] = min[k].min(v);
            max[k] = max[k].max(v);
        }
    }
    if count == 0 {
        return (vec![0.0; c], vec![1.0; c]);
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / count as f64).collect();
    let mut sq = vec![0f64; c];
    for row in rows() {
        for (k, &v) in row.iter().enumerate() {
            let d = f64::from(v) - mean[k];
            sq[k] += d * d;
        }
    }
    let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let std = (0..c)
        .map(|k| {
            let s = (sq[k] / count as f64).sqrt() as f32;
            let s = if min[k] == max[k] || s <= 0.0 || !s.is_finite() {
                1.0
            } else {
                s
            };
            // A spread that tiny against the mean carries no information a folded f32 model
            // could keep, and a model file with it would be refused
            // (`model_file::MEAN_PER_STD`): widen it to the limit.
            s.clamp((mean[k].abs() / MEAN_PER_STD).max(STD_MIN), STD_MAX)
        })
        .collect();
    (mean, std)
}

impl Dataset {
    /// Normalises every value in place: `x = (x - mean[c]) / std[c]`.
    ///
    /// # Panics
    /// If `mean` or `std` does not have `channels` entries, or a `std` is not finite and
    /// positive. Use [`Dataset::try_normalize`] when they come from a file.
    pub fn normalize(&mut self, mean: &[f32], std: &[f32]) {
        if let Err(e) = self.try_normalize(mean, std) {
            panic!("{e}");
        }
    }

    /// [`Dataset::normalize`], returning an error instead of panicking on bad statistics.
    pub fn try_normalize(&mut self, mean: &[f32], std: &[f32]) -> Result<()> {
        let c = self.channels;
        if mean.len() != c || std.len() != c {
            bail!(
                "normalisation has {} means and {} stds, but the dataset has {c} channels",
                mean.len(),
                std.len()
            );
        }
        if let Some(k) = (0..c).find(|&k| !mean[k].is_finite()) {
            bail!("normalisation mean of channel {} is not finite", k + 1);
        }
        if let Some(k) = (0..c).find(|&k| !(std[k].is_finite() && std[k] > 0.0)) {
            bail!(
                "normalisation std of channel {} is {}, not a positive number",
                k + 1,
                std[k]
            );
        }
        if let Some(s) = self.series.iter().find(|s| s.channels != c) {
            bail!(
                "a series has {} channels, but the dataset has {c}",
                s.channels
            );
        }
        for s in &mut self.series {
            for row in s.values.chunks_exact_mut(c.max(1)) {
                for ((v, m), sd) in row.iter_mut().zip(mean).zip(std) {
                    *v = (*v - m) / sd;
                }
            }
        }
        Ok(())
    }

    /// The index of class `name` in [`Dataset::class_names`].
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.class_names.iter().position(|n| n == name)
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// `true` if there are no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// Sorts CSV class names: numerically if all are integers, else by string.
fn sort_class_names(names: &mut [String]) {
    if names.iter().all(|n| n.parse::<i64>().is_ok()) {
        names.sort_by_key(|n| n.parse::<i64>().unwrap_or(0));
    } else {
        names.sort();
    }
}

#[cfg(test)]
pub(crate) mod test_files {
    //! Unique temporary files for tests.
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    /// A fresh, empty directory under the system temp dir, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> Self {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("tinyrnn-dataset-{}-{tag}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        /// Writes `contents` to `name` inside the directory and returns its path.
        pub fn file(&self, name: &str, contents: &str) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, contents).expect("write temp file");
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_files::TempDir;
    use super::*;

    fn ds(series: Vec<Vec<[f32; 2]>>) -> Dataset {
        Dataset {
            series: series
                .into_iter()
                .map(|rows| Series {
                    steps: rows.len(),
                    channels: 2,
                    values: rows.into_iter().flatten().collect(),
                })
                .collect(),
            labels: None,
            class_names: vec![],
            channels: 2,
            name: "t".into(),
        }
    }

    #[test]
    fn stats_over_all_steps_and_constant_channel() {
        let d = ds(vec![vec![[1.0, 5.0], [3.0, 5.0]], vec![[5.0, 5.0]]]);
        let (mean, std) = channel_stats(&d);
        assert_eq!(mean, vec![3.0, 5.0]);
        let expected = (8.0f32 / 3.0).sqrt();
        assert!((std[0] - expected).abs() < 1e-6, "{std:?}");
        assert_eq!(std[1], 1.0);
    }

    #[test]
    fn stats_of_constant_fraction_channel_is_one() {
        let d = ds(vec![vec![[0.1, 0.0]; 7]]);
        let (mean, std) = channel_stats(&d);
        assert_eq!(mean, vec![0.1, 0.0]);
        assert_eq!(std, vec![1.0, 1.0]);
    }

    #[test]
    fn stats_are_always_a_valid_normalisation() {
        // A constant channel far from zero, and one whose spread is far below its mean.
        let d = ds(vec![vec![[1e9, 3e8], [1e9, 3e8 + 1.0]]]);
        let (mean, std) = channel_stats(&d);
        let n = crate::model_file::Normalization { mean, std };
        crate::model_file::check_normalization(&n, 2).expect("valid");
        assert!(n
            .std
            .iter()
            .zip(&n.mean)
            .all(|(s, m)| m.abs() / s <= MEAN_PER_STD));
    }

    #[test]
    fn stats_of_empty_dataset() {
        let d = ds(vec![]);
        assert_eq!(channel_stats(&d), (vec![0.0, 0.0], vec![1.0, 1.0]));
    }

    #[test]
    fn normalize_gives_zero_mean_unit_std() {
        let mut d = ds(vec![
            vec![[1.0, -2.0], [2.0, 0.0], [3.0, 7.0]],
            vec![[10.0, 4.0]],
        ]);
        let (mean, std) = channel_stats(&d);
        d.normalize(&mean, &std);
        let (m2, s2) = channel_stats(&d);
        for k in 0..2 {
            assert!(m2[k].abs() < 1e-6, "{m2:?}");
            assert!((s2[k] - 1.0).abs() < 1e-5, "{s2:?}");
        }
        assert_eq!(d.series[1].row(0).len(), 2);
    }

    #[test]
    fn try_normalize_rejects_bad_stats() {
        let mut d = ds(vec![vec![[1.0, 2.0]]]);
        let e = d.try_normalize(&[0.0], &[1.0, 1.0]).unwrap_err();
        assert!(e.to_string().contains("2 channels"), "{e}");
        let e = d.try_normalize(&[0.0, 0.0], &[1.0, 0.0]).unwrap_err();
        assert!(e.to_string().contains("channel 2"), "{e}");
        assert_eq!(d.series[0].values, vec![1.0, 2.0]);
    }

    #[test]
    #[should_panic(expected = "channels")]
    fn normalize_panics_on_wrong_length() {
        let mut d = ds(vec![vec![[1.0, 2.0]]]);
        d.normalize(&[0.0], &[1.0]);
    }

    #[test]
    fn class_index_and_rows() {
        let mut d = ds(vec![vec![[1.0, 2.0], [3.0, 4.0]]]);
        d.class_names = vec!["a".into(), "b".into()];
        assert_eq!(d.class_index("b"), Some(1));
        assert_eq!(d.class_index("c"), None);
        assert_eq!(d.series[0].row(1), &[3.0, 4.0]);
        assert_eq!(d.series[0].rows().count(), 2);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn class_names_sort_numerically_or_by_string() {
        let mut v: Vec<String> = ["10", "2", "-1"].iter().map(|s| s.to_string()).collect();
        sort_class_names(&mut v);
        assert_eq!(v, ["-1", "2", "10"]);
        let mut v: Vec<String> = ["b", "10", "a"].iter().map(|s| s.to_string()).collect();
        sort_class_names(&mut v);
        assert_eq!(v, ["10", "a", "b"]);
    }

    #[test]
    fn load_dispatches_by_extension() {
        let dir = TempDir::new("dispatch");
        let p = dir.file("x.txt", "1,2\n");
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("x.txt: unknown dataset format"), "{e}");
        let p = dir.file("seq.CSV", "1,2\n3,4\n");
        let d = load(&p).unwrap();
        assert_eq!((d.len(), d.channels, d.name.as_str()), (1, 2, "seq"));
        let p = dir.file("a.TS", "@data\n1,2:3,4\n");
        let d = load(&p).unwrap();
        assert_eq!((d.len(), d.channels), (1, 2));
        let e = load(&dir.0.join("missing.ts")).unwrap_err();
        assert!(format!("{e:#}").contains("missing.ts"), "{e:#}");
    }
}
