//! UEA/UCR `.ts` reader (the format sktime/aeon ship). The accepted dialect and the policies
//! are documented in the [parent module](super).

use super::{Dataset, Labels, MissingPolicy, Series};
use crate::quote::{quote, shorten};
use anyhow::{anyhow, bail, Context, Result};
use std::io::BufRead;
use std::path::Path;

/// Reads a `.ts` file.
pub(crate) fn read_ts(path: &Path, missing: MissingPolicy) -> Result<Dataset> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path).with_context(|| format!("{file}: cannot open"))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_ts(std::io::BufReader::new(f), &file, &stem, missing)
}

/// Header tags seen before `@data`.
#[derive(Default)]
struct Header {
    problem_name: Option<String>,
    univariate: Option<bool>,
    dimensions: Option<usize>,
    equal_length: Option<bool>,
    series_length: Option<usize>,
    /// `Some` when `@classLabel true`.
    class_labels: Option<Vec<String>>,
    seen: Vec<String>,
}

fn one_token<'a>(tag: &str, rest: &[&'a str], at: &str) -> Result<&'a str> {
    match rest {
        [v] => Ok(v),
        [] => bail!("{at}: `{tag}` needs a value"),
        _ => bail!("{at}: `{tag}` takes one value, found {}", rest.len()),
    }
}

fn parse_bool(tag: &str, v: &str, at: &str) -> Result<bool> {
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        bail!(
            "{at}: `{tag}` must be `true` or `false`, found {}",
            quote(v)
        )
    }
}

fn bool_tag(tag: &str, rest: &[&str], at: &str) -> Result<bool> {
    parse_bool(tag, one_token(tag, rest, at)?, at)
}

fn count_tag(tag: &str, rest: &[&str], at: &str) -> Result<usize> {
    let v = one_token(tag, rest, at)?;
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!(
            "{at}: `{tag}` must be a positive integer, found {}",
            quote(v)
        ),
    }
}

impl Header {
    /// Applies one header line; returns `true` for `@data`.
    fn apply(&mut self, text: &str, at: &str) -> Result<bool> {
        let mut tokens = text.split_whitespace();
        let original = tokens.next().unwrap_or_default();
        let tag = original.to_ascii_lowercase();
        let rest: Vec<&str> = tokens.collect();
        if self.seen.contains(&tag) {
            bail!("{at}: {} appears twice", quote(original));
        }
        self.seen.push(tag.clone());
        match tag.as_str() {
            "@problemname" => {
                if rest.is_empty() {
                    bail!("{at}: `{original}` needs a value");
                }
                self.problem_name = Some(rest.join(" "));
            }
            "@timestamps" => {
                if bool_tag(original, &rest, at)? {
                    bail!("{at}: timestamped data (`@timeStamps true`) is not supported");
                }
            }
            "@missing" => {
                bool_tag(original, &rest, at)?;
            }
            "@univariate" => self.univariate = Some(bool_tag(original, &rest, at)?),
            "@dimensions" => self.dimensions = Some(count_tag(original, &rest, at)?),
            "@equallength" => self.equal_length = Some(bool_tag(original, &rest, at)?),
            "@serieslength" => self.series_length = Some(count_tag(original, &rest, at)?),
            "@classlabel" => {
                let Some((first, labels)) = rest.split_first() else {
                    bail!("{at}: `{original}` needs `true <labels...>` or `false`");
                };
                if parse_bool(original, first, at)? {
                    if labels.is_empty() {
                        bail!("{at}: `{original} true` must list the class labels");
                    }
                    // A set, not a scan of the earlier labels: a header may declare many.
                    let mut declared = std::collections::HashSet::new();
                    for l in labels {
                        if !declared.insert(*l) {
                            bail!("{at}: class label {} is declared twice", quote(l));
                        }
                    }
                    self.class_labels = Some(labels.iter().map(|s| s.to_string()).collect());
                } else if !labels.is_empty() {
                    bail!("{at}: `{original} false` takes no labels");
                }
            }
            "@targetlabel" => {
                if bool_tag(original, &rest, at)? {
                    bail!(
                        "{at}: regression datasets (`@targetLabel true`) are not supported; \
                         tinyrnn trains classifiers (`@classLabel true ...`)"
                    );
                }
            }
            "@data" => {
                if !rest.is_empty() {
                    bail!("{at}: `@data` must be alone on its line");
                }
                if self.univariate == Some(true) {
                    if let Some(d) = self.dimensions.filter(|&d| d != 1) {
                        bail!("{at}: `@univariate true` contradicts `@dimensions {d}`");
                    }
                }
                return Ok(true);
            }
            _ => bail!("{at}: unknown header tag {}", quote(original)),
        }
        Ok(false)
    }
}

/// Parses one value; `None` for a missing value (`?`, `NaN`).
fn parse_value(tok: &str, at: &str, dim: usize, step: usize) -> Result<Option<f32>> {
    if tok == "?" || tok.eq_ignore_ascii_case("nan") {
        return Ok(None);
    }
    match tok.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        Ok(_) => bail!(
            "{at}: dimension {dim}: value {step}: {} is not a finite number",
            quote(tok)
        ),
        Err(_) if tok.is_empty() => bail!("{at}: dimension {dim}: value {step} is empty"),
        Err(_) => bail!(
            "{at}: dimension {dim}: value {step}: {} is not a number",
            quote(tok)
        ),
    }
}

/// Fills missing values (NaN markers) of one dimension forward; leading gaps take the first
/// present value.
fn fill_forward(values: &mut [f32], at: &str, dim: usize) -> Result<()> {
    let first = values
        .iter()
        .copied()
        .find(|v| !v.is_nan())
        .ok_or_else(|| anyhow!("{at}: dimension {dim}: every value is missing"))?;
    let mut last = first;
    for v in values {
        if v.is_nan() {
            *v = last;
        } else {
            last = *v;
        }
    }
    Ok(())
}

/// Parses `.ts` text from `reader`. `file` names the source in errors; `stem` is the default
/// dataset name.
pub(crate) fn parse_ts<R: BufRead>(
    mut reader: R,
    file: &str,
    stem: &str,
    missing: MissingPolicy,
) -> Result<Dataset> {
    let mut header = Header::default();
    let mut in_data = false;
    let mut line = String::new();
    let mut lineno = 0usize;
    // Scratch for one series, dimension-major, and the length of each dimension.
    let mut scratch: Vec<f32> = Vec::new();
    let mut lens: Vec<usize> = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    let mut labels: Vec<usize> = Vec::new();
    // (dimensions, line) and (steps, line) of the first series.
    let mut first_dims: Option<(usize, usize)> = None;
    let mut first_len: Option<(usize, usize)> = None;

    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("{file}:{}: cannot read", lineno + 1))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        let mut text = line.as_str();
        if lineno == 1 {
            // A UTF-8 byte-order mark (some editors write one) is not part of the first tag.
            text = text.strip_prefix('\u{feff}').unwrap_or(text);
        }
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let at = format!("{file}:{lineno}");
        if !in_data {
            if text.starts_with('@') {
                in_data = header.apply(text, &at)?;
                continue;
            }
            bail!("{at}: data before the `@data` tag");
        }
        if text.starts_with('@') {
            bail!("{at}: header tag after `@data`");
        }

        // Class label after the last `:`.
        let (body, label) = match &header.class_labels {
            Some(names) => {
                let (body, label) = text.rsplit_once(':').ok_or_else(|| {
                    anyhow!("{at}: expected `<dimensions>:<class label>`, found no `:`")
                })?;
                let label = label.trim();
                let idx = names.iter().position(|n| n == label).ok_or_else(|| {
                    let declared = shorten(&names.join(" "));
                    if label.contains(',') {
                        // Labels never contain `,`: this is the last dimension's values.
                        anyhow!(
                            "{at}: no class label after the last `:` (found the values {}); \
                             `@classLabel true` needs one of the declared labels ({declared}) \
                             at the end of every series",
                            quote(label)
                        )
                    } else {
                        anyhow!(
                            "{at}: class label {} is not declared by `@classLabel` ({declared})",
                            quote(label)
                        )
                    }
                })?;
                (body, Some(idx))
            }
            None => (text, None),
        };

        scratch.clear();
        lens.clear();
        for (d, dim_text) in body.split(':').enumerate() {
            let dim = d + 1;
            let dim_text = dim_text.trim();
            if dim_text.is_empty() {
                bail!("{at}: dimension {dim} has no values");
            }
            if dim_text.starts_with('(') {
                bail!("{at}: dimension {dim}: timestamped values `(time,value)` are not supported");
            }
            let start = scratch.len();
            for (k, tok) in dim_text.split(',').enumerate() {
                match parse_value(tok.trim(), &at, dim, k + 1)? {
                    Some(v) => scratch.push(v),
                    None if missing == MissingPolicy::FillForward => scratch.push(f32::NAN),
                    None => bail!(
                        "{at}: dimension {dim}: missing value {} at step {}; pass \
                         `--fill-missing forward` to replace each missing value with the \
                         previous one of its dimension, or impute them before loading",
                        quote(tok.trim()),
                        k + 1
                    ),
                }
            }
            lens.push(scratch.len() - start);
        }

        let dims = lens.len();
        let expected = match (header.dimensions, header.univariate, first_dims) {
            (Some(d), _, _) => Some((d, "`@dimensions`".to_string())),
            (None, Some(true), _) => Some((1, "`@univariate true`".to_string())),
            (None, _, Some((d, l))) => Some((d, format!("the first series (line {l})"))),
            _ => None,
        };
        if let Some((want, why)) = expected {
            if dims != want {
                bail!("{at}: found {dims} dimensions, expected {want} (from {why})");
            }
        }
        first_dims.get_or_insert((dims, lineno));

        let steps = lens.first().copied().unwrap_or(0);
        if let Some((d, &len)) = lens.iter().enumerate().find(|&(_, &l)| l != steps) {
            bail!(
                "{at}: dimension 1 has {steps} values but dimension {} has {len}; all \
                 dimensions of a series must have the same length",
                d + 1
            );
        }
        if header.equal_length == Some(true) {
            match (header.series_length, first_len) {
                (Some(want), _) if steps != want => bail!(
                    "{at}: series has {steps} steps, but `@seriesLength` is {want} \
                     (and `@equalLength true`)"
                ),
                (None, Some((want, l))) if steps != want => bail!(
                    "{at}: series has {steps} steps, but `@equalLength true` and the first \
                     series (line {l}) has {want}"
                ),
                _ => {}
            }
        }
        first_len.get_or_insert((steps, lineno));

        if missing == MissingPolicy::FillForward {
            for (d, chunk) in scratch.chunks_mut(steps.max(1)).enumerate() {
                fill_forward(chunk, &at, d + 1)?;
            }
        }

        // Dimension-major scratch → row-major series.
        let mut values = Vec::with_capacity(steps * dims);
        for t in 0..steps {
            values.extend((0..dims).filter_map(|d| scratch.get(d * steps + t)));
        }
        series.push(Series {
            values,
            steps,
            channels: dims,
        });
        if let Some(idx) = label {
            labels.push(idx);
        }
    }

    if !in_data {
        bail!("{file}: no `@data` section");
    }
    let Some((channels, _)) = first_dims else {
        bail!("{file}: no series after `@data`");
    };
    let (labels, class_names) = match header.class_labels {
        Some(names) => (Some(Labels::PerSeries(labels)), names),
        None => (None, Vec::new()),
    };
    Ok(Dataset {
        series,
        labels,
        class_names,
        channels,
        name: header.problem_name.unwrap_or_else(|| stem.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_files::TempDir;
    use super::super::{load, load_with, LoadOptions};
    use super::*;
    use std::path::PathBuf;

    fn data(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../data")
            .join(name)
    }

    /// Loads `text` from a temp `.ts` file.
    fn load_str(text: &str) -> Result<Dataset> {
        let dir = TempDir::new("ts");
        load(&dir.file("case.ts", text))
    }

    /// The one-line error for `text`, with the temp path replaced by `case.ts`.
    fn err(text: &str) -> String {
        let e = format!("{:#}", load_str(text).unwrap_err());
        assert!(!e.contains('\n'), "multi-line error: {e}");
        match e.find("case.ts") {
            Some(i) => e[i..].to_string(),
            None => e,
        }
    }

    #[test]
    fn basic_motions_train() {
        let d = load(&data("BasicMotions_TRAIN.ts")).unwrap();
        assert_eq!(d.name, "BasicMotions");
        assert_eq!(d.len(), 40);
        assert_eq!(d.channels, 6);
        assert!(d.series.iter().all(|s| s.steps == 100 && s.channels == 6));
        assert!(d.series.iter().all(|s| s.values.len() == 600));
        assert_eq!(
            d.class_names,
            ["Standing", "Running", "Walking", "Badminton"]
        );
        let Some(Labels::PerSeries(l)) = &d.labels else {
            panic!("labels {:?}", d.labels)
        };
        assert_eq!(l.len(), 40);
        for k in 0..4 {
            assert_eq!(l.iter().filter(|&&c| c == k).count(), 10, "class {k}");
        }
        // First line of the file: dimension 1 starts 0.079106,0.079106,-0.903497 and the
        // series is labelled Standing.
        let s = &d.series[0];
        assert_eq!(s.row(0)[0], 0.079106);
        assert_eq!(s.row(1)[0], 0.079106);
        assert_eq!(s.row(2)[0], -0.903497);
        assert_eq!(l[0], d.class_index("Standing").unwrap());
    }

    #[test]
    fn gun_point_test() {
        let d = load(&data("GunPoint_TEST.ts")).unwrap();
        assert_eq!(d.name, "GunPoint");
        assert_eq!((d.len(), d.channels), (150, 1));
        assert!(d.series.iter().all(|s| s.steps == 150 && s.channels == 1));
        assert_eq!(d.class_names, ["1", "2"]);
        let Some(Labels::PerSeries(l)) = &d.labels else {
            panic!("labels {:?}", d.labels)
        };
        assert_eq!(l.len(), 150);
        assert!(l.iter().all(|&c| c < 2));
    }

    #[test]
    fn variable_length_multivariate() {
        let text = "# a comment\n\
                    @problemName Var Len\n\
                    @timeStamps false\n\
                    @missing false\n\
                    @univariate false\n\
                    @dimensions 2\n\
                    @equalLength false\n\
                    @classLabel true up down\n\
                    \n\
                    @data\n\
                    1,2,3:4,5,6:down\r\n\
                    \n\
                    # comment inside data\n\
                    7 , 8:9,10 : up\n\
                    11:12:down\n";
        let d = load_str(text).unwrap();
        assert_eq!(d.name, "Var Len");
        assert_eq!(d.channels, 2);
        assert_eq!(d.class_names, ["up", "down"]);
        assert_eq!(d.labels, Some(Labels::PerSeries(vec![1, 0, 1])));
        let steps: Vec<usize> = d.series.iter().map(|s| s.steps).collect();
        assert_eq!(steps, [3, 2, 1]);
        assert_eq!(d.series[0].values, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(d.series[1].row(1), &[8.0, 10.0]);
        assert_eq!(d.series[2].values, [11.0, 12.0]);
    }

    #[test]
    fn tags_are_case_insensitive_and_optional() {
        let d = load_str("@PROBLEMNAME x\n@ClassLabel TRUE a b\n@DATA\n1,2:a\n3:b\n").unwrap();
        assert_eq!(d.name, "x");
        assert_eq!(d.labels, Some(Labels::PerSeries(vec![0, 1])));
        let d = load_str("@classLabel false\n@data\n1,2\n").unwrap();
        assert_eq!(
            (d.labels, d.class_names.len(), d.name.as_str()),
            (None, 0, "case")
        );
        let d = load_str("@targetLabel false\n@data\n1\n").unwrap();
        assert_eq!(d.labels, None);
    }

    #[test]
    fn parse_from_reader() {
        let text = "@data\n1,2:3,4\n";
        let d = parse_ts(text.as_bytes(), "mem", "mem", MissingPolicy::Error).unwrap();
        assert_eq!(d.series[0].values, [1.0, 3.0, 2.0, 4.0]);
    }

    #[test]
    fn missing_values_error_by_default() {
        assert_eq!(
            err("@dimensions 2\n@data\n1,2:3,?\n"),
            "case.ts:3: dimension 2: missing value `?` at step 2; pass `--fill-missing \
             forward` to replace each missing value with the previous one of its dimension, or \
             impute them before loading"
        );
        assert!(err("@data\nNaN,1\n").starts_with("case.ts:2: dimension 1: missing value `NaN`"));
    }

    #[test]
    fn missing_values_fill_forward() {
        let dir = TempDir::new("ts-fill");
        let p = dir.file("m.ts", "@data\n?,1,NaN,3:5,?,?,nan\n");
        let opts = LoadOptions {
            missing: MissingPolicy::FillForward,
        };
        let d = load_with(&p, &opts).unwrap();
        assert_eq!(d.series[0].values, [1.0, 5.0, 1.0, 5.0, 1.0, 5.0, 3.0, 5.0]);
        let p = dir.file("all.ts", "@data\n1,2:?,?\n");
        let e = format!("{:#}", load_with(&p, &opts).unwrap_err());
        assert!(
            e.ends_with("all.ts:2: dimension 2: every value is missing"),
            "{e}"
        );
    }

    #[test]
    fn malformed_files() {
        let cases: &[(&str, &str)] = &[
            ("1,2\n", "case.ts:1: data before the `@data` tag"),
            ("@problemName x\n", "case.ts: no `@data` section"),
            ("@data\n\n", "case.ts: no series after `@data`"),
            ("@data\n@dimensions 1\n", "case.ts:2: header tag after `@data`"),
            ("@foo 1\n@data\n", "case.ts:1: unknown header tag `@foo`"),
            ("@dimensions 1\n@Dimensions 1\n", "case.ts:2: `@Dimensions` appears twice"),
            ("@dimensions two\n", "case.ts:1: `@dimensions` must be a positive integer, found `two`"),
            ("@dimensions 0\n", "case.ts:1: `@dimensions` must be a positive integer, found `0`"),
            ("@univariate maybe\n", "case.ts:1: `@univariate` must be `true` or `false`, found `maybe`"),
            ("@missing\n", "case.ts:1: `@missing` needs a value"),
            ("@univariate true\n@dimensions 2\n@data\n", "case.ts:3: `@univariate true` contradicts `@dimensions 2`"),
            ("@timeStamps true\n", "case.ts:1: timestamped data (`@timeStamps true`) is not supported"),
            ("@data\n(0,1.0),(1,2.0)\n", "case.ts:2: dimension 1: timestamped values `(time,value)` are not supported"),
            ("@targetLabel true\n", "case.ts:1: regression datasets (`@targetLabel true`) are not supported; tinyrnn trains classifiers (`@classLabel true ...`)"),
            ("@classLabel true\n", "case.ts:1: `@classLabel true` must list the class labels"),
            ("@classLabel false a\n", "case.ts:1: `@classLabel false` takes no labels"),
            ("@classLabel true a a\n", "case.ts:1: class label `a` is declared twice"),
            ("@classLabel true a b\n@data\n1,2:c\n", "case.ts:3: class label `c` is not declared by `@classLabel` (a b)"),
            ("@classLabel true a b\n@data\n1,2\n", "case.ts:3: expected `<dimensions>:<class label>`, found no `:`"),
            ("@classLabel true a b\n@data\n:a\n", "case.ts:3: dimension 1 has no values"),
            ("@dimensions 2\n@data\n1,2\n", "case.ts:3: found 1 dimensions, expected 2 (from `@dimensions`)"),
            ("@univariate true\n@data\n1:2\n", "case.ts:3: found 2 dimensions, expected 1 (from `@univariate true`)"),
            ("@data\n1:2\n\n1:2:3\n", "case.ts:4: found 3 dimensions, expected 2 (from the first series (line 2))"),
            ("@data\n1,2,3:4,5\n", "case.ts:2: dimension 1 has 3 values but dimension 2 has 2; all dimensions of a series must have the same length"),
            ("@equalLength true\n@seriesLength 2\n@data\n1,2,3\n", "case.ts:4: series has 3 steps, but `@seriesLength` is 2 (and `@equalLength true`)"),
            ("@equalLength true\n@data\n1,2\n1\n", "case.ts:4: series has 1 steps, but `@equalLength true` and the first series (line 3) has 2"),
            ("@data\n1,x\n", "case.ts:2: dimension 1: value 2: `x` is not a number"),
            ("@data\n1,,2\n", "case.ts:2: dimension 1: value 2 is empty"),
            ("@data\n1:2,inf\n", "case.ts:2: dimension 2: value 2: `inf` is not a finite number"),
            ("@classLabel false\n@data\n1,2:a\n", "case.ts:3: dimension 2: value 1: `a` is not a number"),
        ];
        for (text, want) in cases {
            assert_eq!(&err(text), want, "for input {text:?}");
        }
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let d = load_str("\u{feff}@problemName bom\n@data\n1,2\n").unwrap();
        assert_eq!((d.name.as_str(), d.len()), ("bom", 1));
        // Also when the file starts with a comment or straight with `@data`.
        assert_eq!(load_str("\u{feff}# c\n@data\n1\n").unwrap().len(), 1);
        assert_eq!(load_str("\u{feff}@data\n1\n").unwrap().len(), 1);
    }

    #[test]
    fn a_huge_bad_token_gives_a_short_message() {
        let token = "q".repeat(10 << 20);
        let e = err(&format!("@data\n1,{token}\n"));
        assert!(e.len() < 200, "{}", &e[..200]);
        assert!(
            e.ends_with("…` (10485760 characters) is not a number"),
            "{e}"
        );
        let e = err(&format!("@{token}\n@data\n"));
        assert!(e.len() < 200, "{}", &e[..200]);
    }

    #[test]
    fn missing_class_label_does_not_echo_the_dimension() {
        let values = vec!["0.5"; 1_000_000].join(",");
        let e = err(&format!("@classLabel true walk run\n@data\n1,2:{values}\n"));
        assert!(e.len() < 300, "{} bytes", e.len());
        assert!(
            e.starts_with(
                "case.ts:3: no class label after the last `:` (found the values `0.5,0.5,"
            ),
            "{e}"
        );
        assert!(
            e.ends_with(
                "(3999999 characters)); `@classLabel true` needs one of the declared labels \
                 (walk run) at the end of every series"
            ),
            "{e}"
        );
        let many: Vec<String> = (0..100_000).map(|i| format!("class{i}")).collect();
        let e = err(&format!(
            "@classLabel true {}\n@data\n1:nope\n",
            many.join(" ")
        ));
        assert!(e.len() < 300, "{e}");
        assert!(
            e.starts_with("case.ts:3: class label `nope` is not declared"),
            "{e}"
        );
    }

    #[test]
    fn a_ts_directory_is_named_as_such() {
        let dir = TempDir::new("ts-dir");
        let p = dir.0.join("Gestures_TRAIN.ts");
        std::fs::create_dir(&p).unwrap();
        let e = format!("{:#}", load(&p).unwrap_err());
        assert!(
            e.ends_with("Gestures_TRAIN.ts: is a directory, not a .ts file (give the path of the .ts file itself)"),
            "{e}"
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let dir = TempDir::new("ts-utf8");
        let p = dir.0.join("bad.ts");
        std::fs::write(&p, b"@data\n1,\xff\n").unwrap();
        let e = format!("{:#}", load(&p).unwrap_err());
        assert!(e.contains("bad.ts:2: cannot read"), "{e}");
    }
}
