//! Classification metrics: confusion matrix, accuracy, per-class precision / recall / F1.
//!
//! The confusion matrix counts `counts[true][predicted]` (rows are the true classes, columns the
//! predicted ones). For class `k`:
//!
//! - precision = `counts[k][k] / Σ_t counts[t][k]` (of everything predicted `k`, the fraction
//!   that was `k`),
//! - recall = `counts[k][k] / Σ_p counts[k][p]` (of everything that was `k`, the fraction found),
//! - F1 = `2·precision·recall / (precision + recall)`,
//! - support = `Σ_p counts[k][p]` (how many samples are truly `k`).
//!
//! A ratio whose denominator is zero (a class never predicted, or absent from the data) is 0, as
//! in scikit-learn's default `zero_division` behaviour.

use std::fmt;

use serde::Serialize;

/// The index of the largest value (the first one on ties). `NaN` never wins, unless every value
/// is `NaN` (then 0). An empty slice gives 0.
pub fn argmax(values: &[f64]) -> usize {
    let mut best: Option<(usize, f64)> = None;
    for (i, &v) in values.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// A confusion matrix over named classes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confusion {
    /// Class names, in index order.
    pub classes: Vec<String>,
    /// `counts[true][predicted]`.
    pub counts: Vec<Vec<u64>>,
}

/// Precision, recall, F1 and support of one class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassMetrics {
    /// Class name.
    pub class: String,
    /// True positives over predicted positives (0 if never predicted).
    pub precision: f64,
    /// True positives over actual positives (0 if the class has no samples).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 if both are 0).
    pub f1: f64,
    /// Number of samples whose true class this is.
    pub support: u64,
}

/// Everything `tinyrnn eval --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// `correct / total`, a fraction in `[0, 1]`.
    pub accuracy: f64,
    /// Samples whose prediction equals the label.
    pub correct: u64,
    /// Samples evaluated (series, or steps with per-step labels).
    pub total: u64,
    /// Class names, in the order of the matrix rows and columns.
    pub classes: Vec<String>,
    /// One entry per class, in class order.
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl Confusion {
    /// An all-zero matrix over `classes`.
    pub fn new(classes: Vec<String>) -> Confusion {
        let n = classes.len();
        Confusion {
            classes,
            counts: vec![vec![0; n]; n],
        }
    }

    /// Counts one sample.
    ///
    /// # Panics
    /// If `truth` or `predicted` is not a class index.
    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// `true` if there are no classes.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Samples on the diagonal.
    pub fn correct(&self) -> u64 {
        (0..self.len()).map(|k| self.counts[k][k]).sum()
    }

    /// `correct / total` (0 when nothing was counted).
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Samples truly of class `k` (row sum).
    pub fn support(&self, k: usize) -> u64 {
        self.counts[k].iter().sum()
    }

    /// Samples predicted as class `k` (column sum).
    pub fn predicted(&self, k: usize) -> u64 {
        self.counts.iter().map(|row| row[k]).sum()
    }

    /// Precision, recall, F1 and support of every class.
    pub fn per_class(&self) -> Vec<ClassMetrics> {
        (0..self.len())
            .map(|k| {
                let tp = self.counts[k][k];
                let precision = ratio(tp, self.predicted(k));
                let recall = ratio(tp, self.support(k));
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    class: self.classes[k].clone(),
                    precision,
                    recall,
                    f1,
                    support: self.support(k),
                }
            })
            .collect()
    }

    /// The `--json` report.
    pub fn report(&self) -> Report {
        Report {
            accuracy: self.accuracy(),
            correct: self.correct(),
            total: self.total(),
            classes: self.classes.clone(),
            per_class: self.per_class(),
            confusion: self.counts.clone(),
        }
    }
}

/// The confusion matrix as a text table: rows are true classes, columns predicted classes.
impl fmt::Display for Confusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let corner = "true \\ predicted";
        let first = self
            .classes
            .iter()
            .map(|c| c.chars().count())
            .chain([corner.chars().count()])
            .max()
            .unwrap_or(0);
        let widths: Vec<usize> = (0..self.len())
            .map(|k| {
                let digits = (0..self.len())
                    .map(|t| self.counts[t][k].to_string().len())
                    .max()
                    .unwrap_or(1);
                self.classes[k].chars().count().max(digits)
            })
            .collect();
        write!(f, "{corner:<first$}")?;
        for (name, w) in self.classes.iter().zip(&widths) {
            write!(f, "  {name:>w$}")?;
        }
        writeln!(f)?;
        for (name, row) in self.classes.iter().zip(&self.counts) {
            write!(f, "{name:<first$}")?;
            for (v, w) in row.iter().zip(&widths) {
                write!(f, "  {v:>w$}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// The per-class metrics as a text table (with a macro average row).
pub fn metrics_table(confusion: &Confusion) -> String {
    let rows = confusion.per_class();
    let first = rows
        .iter()
        .map(|r| r.class.chars().count())
        .chain(["class".len(), "macro avg".len()])
        .max()
        .unwrap_or(5);
    let mut out = format!(
        "{:<first$}  {:>9}  {:>6}  {:>6}  {:>7}\n",
        "class", "precision", "recall", "f1", "support"
    );
    for r in &rows {
        out.push_str(&format!(
            "{:<first$}  {:>9.3}  {:>6.3}  {:>6.3}  {:>7}\n",
            r.class, r.precision, r.recall, r.f1, r.support
        ));
    }
    if !rows.is_empty() {
        let n = rows.len() as f64;
        let mean = |f: fn(&ClassMetrics) -> f64| rows.iter().map(f).sum::<f64>() / n;
        out.push_str(&format!(
            "{:<first$}  {:>9.3}  {:>6.3}  {:>6.3}  {:>7}\n",
            "macro avg",
            mean(|r| r.precision),
            mean(|r| r.recall),
            mean(|r| r.f1),
            confusion.total()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    /// Hand-computed example (rows true, columns predicted):
    ///
    /// ```text
    ///        a  b  c
    ///   a    5  1  0     support 6
    ///   b    2  3  1     support 6
    ///   c    0  0  0     support 0 (never occurs, predicted once)
    /// ```
    ///
    /// correct = 8, total = 12, accuracy = 2/3.
    /// a: precision 5/7, recall 5/6, f1 = 2·(5/7)(5/6)/((5/7)+(5/6)) = 10/13.
    /// b: precision 3/4, recall 3/6 = 1/2, f1 = 2·(3/4)(1/2)/(5/4) = 3/5.
    /// c: precision 0/1 = 0, recall 0/0 → 0, f1 0.
    #[test]
    fn metrics_of_a_hand_computed_matrix() {
        let mut c = Confusion::new(names(&["a", "b", "c"]));
        let cells = [(0, 0, 5), (0, 1, 1), (1, 0, 2), (1, 1, 3), (1, 2, 1)];
        for (t, p, n) in cells {
            for _ in 0..n {
                c.add(t, p);
            }
        }
        assert_eq!(c.counts, vec![vec![5, 1, 0], vec![2, 3, 1], vec![0, 0, 0]]);
        assert_eq!((c.correct(), c.total()), (8, 12));
        assert!((c.accuracy() - 2.0 / 3.0).abs() < 1e-12);
        let m = c.per_class();
        let expect = [
            ("a", 5.0 / 7.0, 5.0 / 6.0, 10.0 / 13.0, 6),
            ("b", 0.75, 0.5, 0.6, 6),
            ("c", 0.0, 0.0, 0.0, 0),
        ];
        for (got, (name, p, r, f1, s)) in m.iter().zip(expect) {
            assert_eq!(got.class, name);
            assert!((got.precision - p).abs() < 1e-12, "{got:?}");
            assert!((got.recall - r).abs() < 1e-12, "{got:?}");
            assert!((got.f1 - f1).abs() < 1e-12, "{got:?}");
            assert_eq!(got.support, s);
        }
        let report = c.report();
        assert_eq!(report.confusion, c.counts);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["correct"], 8);
        assert_eq!(json["per_class"][1]["class"], "b");
    }

    #[test]
    fn empty_matrix_has_zero_accuracy() {
        let c = Confusion::new(names(&["x"]));
        assert_eq!((c.total(), c.accuracy()), (0, 0.0));
        assert_eq!(c.per_class()[0].f1, 0.0);
    }

    #[test]
    fn argmax_takes_first_maximum_and_skips_nan() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, -1.0]), 1);
        assert_eq!(argmax(&[f64::NAN, -3.0, -4.0]), 1);
        assert_eq!(argmax(&[f64::NAN, f64::NAN]), 0);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn text_tables_have_class_names() {
        let mut c = Confusion::new(names(&["Walking", "Running"]));
        c.add(0, 0);
        c.add(1, 0);
        let text = c.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("Walking") && lines[0].contains("Running"));
        assert!(lines[2].starts_with("Running"));
        assert!(lines[2].trim_end().ends_with('0'));
        let t = metrics_table(&c);
        assert!(t.contains("macro avg"), "{t}");
        assert!(t.lines().nth(1).unwrap().starts_with("Walking"), "{t}");
    }
}
