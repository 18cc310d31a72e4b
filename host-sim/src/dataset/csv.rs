//! CSV sequence files and the two CSV dataset forms (one file with a `sequence` column, or a
//! directory of sequence files with `labels.csv`). The rules are documented in the
//! [parent module](super).

use super::{sort_class_names, Dataset, Labels, Series};
use crate::quote::quote;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// The UTF-8 byte-order mark some editors (and Excel's "CSV UTF-8") put at the start of a file.
const BOM: char = '\u{feff}';

/// The whole file, without a leading byte-order mark.
fn read_text(path: &Path) -> Result<String> {
    let mut text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if text.starts_with(BOM) {
        text.drain(..BOM.len_utf8());
    }
    Ok(text)
}

/// Non-blank lines with their 1-based line numbers, trimmed (CRLF-safe).
fn rows(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// Parses a field that must be a finite number; `col` is 1-based.
fn number(tok: &str, file: &str, line: usize, col: usize) -> Result<f32> {
    let tok = tok.trim();
    match tok.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => bail!(
            "{file}:{line}: column {col}: {} is not a finite number",
            quote(tok)
        ),
        Err(_) => bail!(
            "{file}:{line}: column {col}: {} is not a number",
            quote(tok)
        ),
    }
}

/// One CSV sequence file: one row per timestep, one column per feature, no header.
///
/// Every row must have as many columns as the first; values must be finite numbers; blank
/// lines are skipped, whitespace around fields is trimmed, CRLF line ends and a leading UTF-8
/// byte-order mark are accepted.
pub fn read_sequence_csv(path: &Path) -> Result<Series> {
    collect_sequence(open_sequence_csv(path)?)
}

/// Opens a CSV sequence file for reading row by row (the rules of [`read_sequence_csv`]).
pub fn open_sequence_csv(path: &Path) -> Result<SequenceReader<std::io::BufReader<std::fs::File>>> {
    let f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(SequenceReader::new(
        std::io::BufReader::new(f),
        &path.display().to_string(),
    ))
}

/// A CSV sequence read one row at a time, in memory independent of the number of rows: what
/// `tinyrnn run` streams through a model. [`read_sequence_csv`] is this reader collected.
#[derive(Debug)]
pub struct SequenceReader<R> {
    reader: R,
    file: String,
    line: String,
    lineno: usize,
    row: Vec<f32>,
    /// (columns, line) of the first row.
    first: Option<(usize, usize)>,
}

impl<R: BufRead> SequenceReader<R> {
    /// Reads from `reader`; `file` names the source in errors.
    pub fn new(reader: R, file: &str) -> Self {
        SequenceReader {
            reader,
            file: file.to_string(),
            line: String::new(),
            lineno: 0,
            row: Vec::new(),
            first: None,
        }
    }

    /// The next row's values, `None` after the last row. A file without any row is an error
    /// (`file: no rows`), as is a row of another width than the first, naming its line.
    pub fn next_row(&mut self) -> Result<Option<&[f32]>> {
        let file = self.file.as_str();
        loop {
            self.line.clear();
            let n = self
                .reader
                .read_line(&mut self.line)
                .with_context(|| format!("{file}:{}: cannot read", self.lineno + 1))?;
            if n == 0 {
                if self.first.is_none() {
                    bail!("{file}: no rows");
                }
                return Ok(None);
            }
            self.lineno += 1;
            let mut text = self.line.as_str();
            if self.lineno == 1 {
                text = text.strip_prefix(BOM).unwrap_or(text);
            }
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let line = self.lineno;
            self.row.clear();
            for (c, tok) in text.split(',').enumerate() {
                self.row.push(number(tok, file, line, c + 1)?);
            }
            let n = self.row.len();
            match self.first {
                None => self.first = Some((n, line)),
                Some((want, l)) if n != want => {
                    bail!("{file}:{line}: {n} columns, but the first row (line {l}) has {want}")
                }
                _ => {}
            }
            return Ok(Some(&self.row));
        }
    }

    /// Columns per row, once the first row has been read.
    pub fn channels(&self) -> Option<usize> {
        self.first.map(|(c, _)| c)
    }

    /// The 1-based line of the row [`Self::next_row`] returned last.
    pub fn line(&self) -> usize {
        self.lineno
    }
}

fn collect_sequence<R: BufRead>(mut reader: SequenceReader<R>) -> Result<Series> {
    let mut values = Vec::new();
    let mut steps = 0;
    while let Some(row) = reader.next_row()? {
        values.extend_from_slice(row);
        steps += 1;
    }
    Ok(Series {
        values,
        steps,
        channels: reader.channels().unwrap_or(0),
    })
}

fn parse_sequence(text: &str, file: &str) -> Result<Series> {
    collect_sequence(SequenceReader::new(text.as_bytes(), file))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Interns labels in order of first appearance; `finish` sorts the class names and remaps.
#[derive(Default)]
struct LabelTable {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl LabelTable {
    fn intern(&mut self, label: &str) -> usize {
        if let Some(&i) = self.index.get(label) {
            return i;
        }
        let i = self.names.len();
        self.names.push(label.to_string());
        self.index.insert(label.to_string(), i);
        i
    }

    /// Sorted class names and, for each interned index, its index in the sorted names.
    fn finish(self) -> (Vec<String>, Vec<usize>) {
        let mut sorted = self.names.clone();
        sort_class_names(&mut sorted);
        let remap = self
            .names
            .iter()
            .map(|n| sorted.iter().position(|s| s == n).unwrap_or(0))
            .collect();
        (sorted, remap)
    }
}

/// A `.csv` given to `load`: a header with a `sequence` column, or a plain sequence file.
pub(crate) fn read_csv_dataset(path: &Path) -> Result<Dataset> {
    let file = path.display().to_string();
    let text = read_text(path)?;
    let Some((hline, header)) = rows(&text).next() else {
        bail!("{file}: no rows");
    };
    if header.split(',').all(|t| t.trim().parse::<f32>().is_ok()) {
        let s = parse_sequence(&text, &file)?;
        return Ok(Dataset {
            channels: s.channels,
            series: vec![s],
            labels: None,
            class_names: Vec::new(),
            name: stem(path),
        });
    }

    // Header form.
    let names: Vec<String> = header.split(',').map(|t| t.trim().to_string()).collect();
    let mut seq_col = None;
    let mut label_col = None;
    let mut features = Vec::new();
    for (c, name) in names.iter().enumerate() {
        if name.is_empty() {
            bail!("{file}:{hline}: column {} has an empty name", c + 1);
        }
        if names[..c].iter().any(|n| n.eq_ignore_ascii_case(name)) {
            bail!("{file}:{hline}: column name {} appears twice", quote(name));
        }
        if name.eq_ignore_ascii_case("sequence") {
            seq_col = Some(c);
        } else if name.eq_ignore_ascii_case("label") {
            label_col = Some(c);
        } else {
            features.push(c);
        }
    }
    let Some(seq_col) = seq_col else {
        bail!(
            "{file}:{hline}: the first row is not all numbers, so it is a header, but it has no \
             `sequence` column (a dataset CSV needs `sequence` and feature columns; a sequence \
             CSV has no header)"
        );
    };
    if features.is_empty() {
        bail!("{file}:{hline}: the header has no feature columns");
    }

    let channels = features.len();
    let mut series: Vec<Series> = Vec::new();
    let mut step_labels: Vec<Vec<usize>> = Vec::new();
    let mut table = LabelTable::default();
    let mut seen: HashMap<String, usize> = HashMap::new(); // id → first line
    let mut current: Option<String> = None;
    let mut fields: Vec<&str> = Vec::with_capacity(names.len());
    for (line, row) in rows(&text).skip(1) {
        fields.clear();
        fields.extend(row.split(',').map(str::trim));
        if fields.len() != names.len() {
            bail!(
                "{file}:{line}: {} columns, but the header (line {hline}) has {}",
                fields.len(),
                names.len()
            );
        }
        let id = fields.get(seq_col).copied().unwrap_or_default();
        if id.is_empty() {
            bail!("{file}:{line}: column {}: empty sequence id", seq_col + 1);
        }
        if current.as_deref() != Some(id) {
            if let Some(&first) = seen.get(id) {
                bail!(
                    "{file}:{line}: sequence {} (first seen on line {first}) appears again \
                     after another sequence; the rows of one sequence must be contiguous",
                    quote(id)
                );
            }
            seen.insert(id.to_string(), line);
            current = Some(id.to_string());
            series.push(Series {
                values: Vec::new(),
                steps: 0,
                channels,
            });
            step_labels.push(Vec::new());
        }
        let (Some(s), Some(ls)) = (series.last_mut(), step_labels.last_mut()) else {
            bail!("{file}:{line}: internal error: no current sequence");
        };
        for &c in &features {
            let tok = fields.get(c).copied().unwrap_or_default();
            s.values.push(number(tok, &file, line, c + 1)?);
        }
        s.steps += 1;
        if let Some(c) = label_col {
            let label = fields.get(c).copied().unwrap_or_default();
            if label.is_empty() {
                bail!("{file}:{line}: column {}: empty label", c + 1);
            }
            ls.push(table.intern(label));
        }
    }
    if series.is_empty() {
        bail!("{file}: no data rows after the header");
    }
    let (labels, class_names) = if label_col.is_some() {
        let (names, remap) = table.finish();
        for l in step_labels.iter_mut().flatten() {
            *l = remap.get(*l).copied().unwrap_or(0);
        }
        (Some(Labels::PerStep(step_labels)), names)
    } else {
        (None, Vec::new())
    };
    Ok(Dataset {
        series,
        labels,
        class_names,
        channels,
        name: stem(path),
    })
}

/// The files [`read_csv_dir`] reads from `dir`: `labels.csv` and the files it lists, or every
/// `*.csv` file. Best effort: when `labels.csv` cannot be parsed, only itself (loading then
/// fails with the reason).
pub(crate) fn dir_source_files(dir: &Path) -> Vec<PathBuf> {
    let labels = dir.join("labels.csv");
    let mut files: Vec<PathBuf> = Vec::new();
    if labels.is_file() {
        files.push(labels);
    }
    if let Ok(entries) = dir_entries(dir) {
        files.extend(entries.into_iter().map(|(name, _)| dir.join(name)));
    }
    files
}

/// The series files of a dataset directory, in load order, with their labels: the rows of
/// `labels.csv`, or every `*.csv` file sorted by name (unlabelled).
fn dir_entries(dir: &Path) -> Result<Vec<(String, Option<String>)>> {
    let dir_name = dir.display().to_string();
    let labels_path = dir.join("labels.csv");
    // (file name, label)
    let mut entries: Vec<(String, Option<String>)> = Vec::new();
    if labels_path.is_file() {
        let file = labels_path.display().to_string();
        let text = read_text(&labels_path)?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, (line, row)) in rows(&text).enumerate() {
            let fields: Vec<&str> = row.split(',').map(str::trim).collect();
            let [name, label] = fields[..] else {
                bail!(
                    "{file}:{line}: expected 2 columns `file,label`, found {}",
                    fields.len()
                );
            };
            if i == 0 && name.eq_ignore_ascii_case("file") && label.eq_ignore_ascii_case("label") {
                continue;
            }
            if name.is_empty() {
                bail!("{file}:{line}: column 1: empty file name");
            }
            // Longer than any path a system accepts (PATH_MAX is 4096 on Linux); refused here
            // so that the "cannot read" message does not echo it whole.
            if name.len() > 4096 {
                bail!(
                    "{file}:{line}: column 1: file name {} is too long",
                    quote(name)
                );
            }
            if label.is_empty() {
                bail!("{file}:{line}: column 2: empty label");
            }
            if let Some(first) = seen.insert(name.to_string(), line) {
                bail!(
                    "{file}:{line}: {} is already listed on line {first}",
                    quote(name)
                );
            }
            entries.push((name.to_string(), Some(label.to_string())));
        }
        if entries.is_empty() {
            bail!("{file}: no rows");
        }
    } else {
        let read = std::fs::read_dir(dir).with_context(|| format!("{dir_name}: cannot list"))?;
        for entry in read {
            let entry = entry.with_context(|| format!("{dir_name}: cannot list"))?;
            let path = entry.path();
            let is_csv = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            if is_csv && path.is_file() {
                entries.push((entry.file_name().to_string_lossy().into_owned(), None));
            }
        }
        if entries.is_empty() {
            bail!("{dir_name}: no .csv files (and no labels.csv)");
        }
        entries.sort();
    }
    Ok(entries)
}

/// A directory of sequence files, labelled by `labels.csv` if present.
pub(crate) fn read_csv_dir(dir: &Path) -> Result<Dataset> {
    let dir_name = dir.display().to_string();
    let entries = dir_entries(dir)?;
    let mut series = Vec::with_capacity(entries.len());
    let mut table = LabelTable::default();
    let mut labels = Vec::new();
    let mut first: Option<(usize, String)> = None; // (channels, file)
    for (name, label) in &entries {
        let path = dir.join(name);
        let s = read_sequence_csv(&path)?;
        match &first {
            None => first = Some((s.channels, name.clone())),
            Some((want, f)) if s.channels != *want => bail!(
                "{}: {} columns, but {f} has {want}",
                path.display(),
                s.channels
            ),
            _ => {}
        }
        series.push(s);
        if let Some(l) = label {
            labels.push(table.intern(l));
        }
    }
    let channels = first
        .map(|(c, _)| c)
        .ok_or_else(|| anyhow!("{dir_name}: no series"))?;
    let (labels, class_names) = if labels.is_empty() {
        (None, Vec::new())
    } else {
        let (names, remap) = table.finish();
        let l = labels
            .iter()
            .map(|&i| remap.get(i).copied().unwrap_or(0))
            .collect();
        (Some(Labels::PerSeries(l)), names)
    };
    Ok(Dataset {
        series,
        labels,
        class_names,
        channels,
        name: dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::super::test_files::TempDir;
    use super::*;

    /// The one-line error, from the temp file name onward.
    fn tail(e: anyhow::Error, from: &str) -> String {
        let e = format!("{e:#}");
        assert!(!e.contains('\n'), "multi-line error: {e}");
        match e.find(from) {
            Some(i) => e[i..].to_string(),
            None => e,
        }
    }

    fn seq_err(text: &str) -> String {
        let dir = TempDir::new("csv");
        let p = dir.file("s.csv", text);
        tail(read_sequence_csv(&p).unwrap_err(), "s.csv")
    }

    #[test]
    fn sequence_file() {
        let dir = TempDir::new("csv-seq");
        let p = dir.file("s.csv", " 1, 2.5 ,-3\r\n4,5e-1,6\r\n\r\n7,8,9\r\n\n");
        let s = read_sequence_csv(&p).unwrap();
        assert_eq!((s.steps, s.channels), (3, 3));
        assert_eq!(s.values, [1.0, 2.5, -3.0, 4.0, 0.5, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(s.row(2), &[7.0, 8.0, 9.0]);
        let s = read_sequence_csv(&dir.file("one.csv", "42")).unwrap();
        assert_eq!((s.steps, s.channels, s.values[0]), (1, 1, 42.0));
    }

    #[test]
    fn sequence_file_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "s.csv: no rows"),
            ("\n \r\n", "s.csv: no rows"),
            ("1,2\n3,x\n", "s.csv:2: column 2: `x` is not a number"),
            ("a,b\n1,2\n", "s.csv:1: column 1: `a` is not a number"),
            ("1,2\n3,\n", "s.csv:2: column 2: `` is not a number"),
            ("1,NaN\n", "s.csv:1: column 2: `NaN` is not a finite number"),
            (
                "1,2\n\n-inf,2\n",
                "s.csv:3: column 1: `-inf` is not a finite number",
            ),
            (
                "1,2\n3,4,5\n",
                "s.csv:2: 3 columns, but the first row (line 1) has 2",
            ),
            (
                "1,2\n3\n",
                "s.csv:2: 1 columns, but the first row (line 1) has 2",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&seq_err(text), want, "for input {text:?}");
        }
        let e = read_sequence_csv(Path::new("/nonexistent/tinyrnn.csv")).unwrap_err();
        assert!(format!("{e:#}").starts_with("/nonexistent/tinyrnn.csv: cannot read"));
    }

    #[test]
    fn byte_order_mark_is_skipped_by_every_csv_reader() {
        let dir = TempDir::new("csv-bom");
        // Sequence file.
        let s = read_sequence_csv(&dir.file("s.csv", "\u{feff}1,2\n3,4\n")).unwrap();
        assert_eq!(s.values, [1.0, 2.0, 3.0, 4.0]);
        // The same through `load` (headerless dataset file).
        let d = load(&dir.file("p.csv", "\u{feff}1,2\n")).unwrap();
        assert_eq!(d.series[0].values, [1.0, 2.0]);
        // Header form: the mark is not part of the first column's name.
        let d = load(&dir.file("h.csv", "\u{feff}sequence,x\n1,5\n")).unwrap();
        assert_eq!((d.len(), d.series[0].values.clone()), (1, vec![5.0]));
        // labels.csv of a directory, header row and first file name.
        let sub = TempDir::new("csv-bom-dir");
        sub.file("a.csv", "1\n");
        sub.file("labels.csv", "\u{feff}file,label\na.csv,x\n");
        assert_eq!(load(&sub.0).unwrap().class_names, ["x"]);
        sub.file("labels.csv", "\u{feff}a.csv,x\n");
        assert_eq!(load(&sub.0).unwrap().len(), 1);
        // Only at the very start: elsewhere it is an ordinary (bad) character, shown escaped.
        assert_eq!(
            seq_err("1,2\n\u{feff}3,4\n"),
            "s.csv:2: column 1: `\\u{feff}3` is not a number"
        );
    }

    #[test]
    fn a_huge_bad_token_gives_a_short_message() {
        let token = "x".repeat(10 << 20);
        let e = seq_err(&format!("1,{token}\n"));
        assert!(
            e.len() < 200,
            "{} bytes: {}",
            e.len(),
            &e[..200.min(e.len())]
        );
        assert!(
            e.starts_with("s.csv:1: column 2: `xxxx")
                && e.ends_with("…` (10485760 characters) is not a number"),
            "{e}"
        );
        let dir = TempDir::new("csv-huge");
        let p = dir.file(
            "d.csv",
            &format!("sequence,x\n{token},1\n{token}y,2\n{token},3\n"),
        );
        let e = tail(load(&p).unwrap_err(), "d.csv");
        assert!(e.len() < 300, "{e}");
        assert!(e.contains("sequence `xxx"), "{e}");
    }

    #[test]
    fn streaming_reader_yields_rows_and_the_same_errors() {
        let text = "1,2\n\n3,4\n5\n";
        let mut r = SequenceReader::new(text.as_bytes(), "m.csv");
        assert_eq!(r.next_row().unwrap(), Some(&[1.0, 2.0][..]));
        assert_eq!(r.line(), 1);
        assert_eq!(r.next_row().unwrap(), Some(&[3.0, 4.0][..]));
        assert_eq!((r.line(), r.channels()), (3, Some(2)));
        let e = r.next_row().unwrap_err().to_string();
        assert_eq!(e, "m.csv:4: 1 columns, but the first row (line 1) has 2");
        let mut r = SequenceReader::new("1\n".as_bytes(), "m.csv");
        assert!(r.next_row().unwrap().is_some());
        assert_eq!(r.next_row().unwrap(), None);
        let e = SequenceReader::new(" \n".as_bytes(), "m.csv")
            .next_row()
            .unwrap_err();
        assert_eq!(e.to_string(), "m.csv: no rows");
    }

    #[test]
    fn source_files_of_a_directory() {
        let dir = TempDir::new("csv-sources");
        dir.file("b.csv", "1\n");
        dir.file("a.csv", "1\n");
        dir.file("notes.txt", "");
        let names = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(super::super::source_files(&dir.0)),
            ["a.csv", "b.csv"]
        );
        dir.file("labels.csv", "b.csv,x\n");
        assert_eq!(
            names(super::super::source_files(&dir.0)),
            ["labels.csv", "b.csv"]
        );
        dir.file("labels.csv", "broken\n");
        assert_eq!(names(super::super::source_files(&dir.0)), ["labels.csv"]);
    }

    #[test]
    fn dataset_file_with_sequence_and_label_columns() {
        let dir = TempDir::new("csv-ds");
        let text = "x, Sequence ,LABEL,y\r\n\
                    1,a,walk,10\r\n\
                    2,a,walk,20\r\n\
                    3,a,run,30\r\n\
                    \r\n\
                    4,b,10,40\r\n\
                    5,c,run,50\r\n";
        let d = load(&dir.file("set.csv", text)).unwrap();
        assert_eq!((d.name.as_str(), d.channels, d.len()), ("set", 2, 3));
        assert_eq!(d.class_names, ["10", "run", "walk"]);
        assert_eq!(
            d.labels,
            Some(Labels::PerStep(vec![vec![2, 2, 1], vec![0], vec![1]]))
        );
        assert_eq!(d.series[0].values, [1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
        assert_eq!(d.series[0].steps, 3);
        assert_eq!(d.series[2].row(0), &[5.0, 50.0]);
    }

    #[test]
    fn dataset_file_without_labels_and_headerless() {
        let dir = TempDir::new("csv-ds2");
        let d = load(&dir.file("u.csv", "sequence,f\n1,0.5\n1,1.5\n2,2\n")).unwrap();
        assert_eq!((d.len(), d.channels, d.labels), (2, 1, None));
        assert_eq!(d.series[0].values, [0.5, 1.5]);
        let d = load(&dir.file("plain.csv", "1,2\n3,4\n")).unwrap();
        assert_eq!((d.len(), d.channels, d.series[0].steps), (1, 2, 2));
        assert!(d.labels.is_none() && d.class_names.is_empty());
    }

    #[test]
    fn dataset_file_errors() {
        let dir = TempDir::new("csv-dserr");
        let cases: &[(&str, &str)] = &[
            ("", "d.csv: no rows"),
            ("sequence,label,x\n", "d.csv: no data rows after the header"),
            ("seq,x\n1,2\n", "d.csv:1: the first row is not all numbers, so it is a header, but it has no `sequence` column (a dataset CSV needs `sequence` and feature columns; a sequence CSV has no header)"),
            ("1,2x\n", "d.csv:1: the first row is not all numbers"),
            ("sequence,label\n1,a\n", "d.csv:1: the header has no feature columns"),
            ("sequence,x,X\n", "d.csv:1: column name `X` appears twice"),
            ("sequence,,x\n", "d.csv:1: column 2 has an empty name"),
            ("sequence,x\n1,2\n1\n", "d.csv:3: 1 columns, but the header (line 1) has 2"),
            ("sequence,x\n,2\n", "d.csv:2: column 1: empty sequence id"),
            ("sequence,x\n1,oops\n", "d.csv:2: column 2: `oops` is not a number"),
            ("sequence,x\n1,inf\n", "d.csv:2: column 2: `inf` is not a finite number"),
            ("sequence,label,x\n1,,2\n", "d.csv:2: column 2: empty label"),
            ("sequence,x\na,1\nb,2\n\na,3\n", "d.csv:5: sequence `a` (first seen on line 2) appears again after another sequence; the rows of one sequence must be contiguous"),
        ];
        for (text, want) in cases {
            let p = dir.file("d.csv", text);
            let got = tail(load(&p).unwrap_err(), "d.csv");
            assert!(got.starts_with(want), "for input {text:?}: got {got}");
        }
    }

    #[test]
    fn directory_with_labels_csv() {
        let dir = TempDir::new("csv-dir");
        dir.file("a.csv", "1,2\n3,4\n");
        dir.file("b.csv", "5,6\n");
        dir.file("c.csv", "7,8\n9,10\n11,12\n");
        dir.file("unlisted.csv", "not,numbers\n");
        dir.file(
            "labels.csv",
            "file,label\r\nc.csv, 2\r\na.csv,10\r\nb.csv,2\r\n",
        );
        let d = load(&dir.0).unwrap();
        assert_eq!(d.channels, 2);
        let steps: Vec<usize> = d.series.iter().map(|s| s.steps).collect();
        assert_eq!(steps, [3, 2, 1]);
        assert_eq!(d.class_names, ["2", "10"]);
        assert_eq!(d.labels, Some(Labels::PerSeries(vec![0, 1, 0])));
        assert!(d.name.starts_with("tinyrnn-dataset-"));

        // Header row is optional.
        dir.file("labels.csv", "b.csv,x\n");
        let d = load(&dir.0).unwrap();
        assert_eq!((d.len(), d.labels), (1, Some(Labels::PerSeries(vec![0]))));
    }

    #[test]
    fn directory_without_labels_csv() {
        let dir = TempDir::new("csv-dir2");
        dir.file("b.csv", "5,6\n");
        dir.file("a.CSV", "1,2\n3,4\n");
        dir.file("notes.txt", "ignored");
        let d = load(&dir.0).unwrap();
        assert_eq!((d.len(), d.labels.clone()), (2, None));
        assert_eq!(d.series[0].steps, 2, "sorted by name: a.CSV first");
    }

    #[test]
    fn directory_errors() {
        let dir = TempDir::new("csv-direrr");
        let e = tail(load(&dir.0).unwrap_err(), "tinyrnn-dataset-");
        assert!(e.ends_with(": no .csv files (and no labels.csv)"), "{e}");

        dir.file("a.csv", "1,2\n");
        dir.file("b.csv", "1,2,3\n");
        dir.file("bad.csv", "1,q\n");
        let cases: &[(&str, &str)] = &[
            ("file,label\n", "labels.csv: no rows"),
            (
                "a.csv\n",
                "labels.csv:1: expected 2 columns `file,label`, found 1",
            ),
            (
                "a.csv,x,y\n",
                "labels.csv:1: expected 2 columns `file,label`, found 3",
            ),
            ("a.csv,\n", "labels.csv:1: column 2: empty label"),
            (",x\n", "labels.csv:1: column 1: empty file name"),
            (
                "a.csv,x\n\na.csv,y\n",
                "labels.csv:3: `a.csv` is already listed on line 1",
            ),
            ("a.csv,x\nb.csv,x\n", "b.csv: 3 columns, but a.csv has 2"),
            ("bad.csv,x\n", "bad.csv:1: column 2: `q` is not a number"),
            ("gone.csv,x\n", "gone.csv: cannot read"),
            (
                &format!("{},x\n", "n".repeat(5000)),
                "labels.csv:1: column 1: file name `nnnn",
            ),
        ];
        for (text, want) in cases {
            dir.file("labels.csv", text);
            let e = format!("{:#}", load(&dir.0).unwrap_err());
            assert!(!e.contains('\n'), "{e}");
            assert!(e.contains(want), "for labels.csv {text:?}: got {e}");
        }
    }
}
