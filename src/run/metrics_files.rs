//! A run's metrics files: one record an epoch, appended to `metrics.csv`
//! and `metrics.jsonl` as the run goes, and read back (checked line by
//! line) when a run resumes.

use crate::error::{Error, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The metrics of one epoch.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (as the weights moved).
    pub train_loss: f64,
    /// Training error over the epoch's batches.
    pub train_error: f64,
    /// Validation loss after the epoch (NaN without a validation set).
    pub val_loss: f64,
    /// Validation error after the epoch.
    pub val_error: f64,
    /// Test loss after the epoch.
    pub test_loss: f64,
    /// Test error after the epoch.
    pub test_error: f64,
    /// Seconds of training (without evaluation).
    pub train_seconds: f64,
    /// Seconds of the whole epoch, evaluation included.
    pub seconds: f64,
    /// The rule's feedback losses (name, mean over the epoch).
    #[serde(flatten)]
    pub feedback: std::collections::BTreeMap<String, f64>,
    /// Alignment angles with BP on the probe batch, in degrees (`align_*`),
    /// and the count of probe samples they are measured on (`align_samples`).
    #[serde(flatten)]
    pub alignment: std::collections::BTreeMap<String, f64>,
    /// The norm of every weight tensor after the epoch (`norm_*`, see
    /// [`crate::metrics::weight_norms`]).
    #[serde(flatten)]
    pub norms: std::collections::BTreeMap<String, f64>,
}

impl EpochRecord {
    /// One line for the terminal.
    pub fn summary(&self, epochs: usize) -> String {
        let mut s = format!(
            "epoch {:>3}/{epochs}  train loss {:.4}  err {:6.2}%  |  val err {:6.2}%  test err {:6.2}%  |  {:.2}s",
            self.epoch,
            self.train_loss,
            100.0 * self.train_error,
            100.0 * self.val_error,
            100.0 * self.test_error,
            self.seconds
        );
        for (k, v) in &self.feedback {
            s.push_str(&format!("  {k} {v:.4}"));
        }
        s
    }

    /// Every value but the epoch, named, in the order of the metrics files:
    /// the fixed columns, then the feedback losses, the angles and the norms.
    fn columns(&self) -> Vec<(&str, f64)> {
        let fixed = [
            self.train_loss,
            self.train_error,
            self.val_loss,
            self.val_error,
            self.test_loss,
            self.test_error,
            self.train_seconds,
            self.seconds,
        ];
        FIXED_COLUMNS[1..]
            .iter()
            .copied()
            .zip(fixed)
            .chain(
                [&self.feedback, &self.alignment, &self.norms]
                    .into_iter()
                    .flatten()
                    .map(|(k, &v)| (k.as_str(), v)),
            )
            .collect()
    }
}

/// The `metrics.jsonl` line of one epoch: its values as JSON, in the order
/// of `metrics.csv`'s columns (what serializing an [`EpochRecord`] gives).
fn json_line<'a>(epoch: usize, columns: impl IntoIterator<Item = (&'a str, f64)>) -> String {
    let mut line = format!("{{\"epoch\":{epoch}");
    for (name, value) in columns {
        let key = serde_json::to_string(name).expect("a string serializes");
        let value = serde_json::to_string(&value).expect("a number serializes");
        line.push_str(&format!(",{key}:{value}"));
    }
    line.push('}');
    line
}

/// Refuses kept metrics whose header has a column that the resumed run
/// will not record (`recorded`: every name but `epoch`), since its rows
/// could not be continued; fewer columns are fine (a run started by an
/// earlier version of biprop goes on without the newer ones).
pub(super) fn check_columns(
    kept: &Kept,
    recorded: &[String],
) -> std::result::Result<(), (&'static str, String)> {
    let Some(header) = kept.csv.first() else {
        return Ok(());
    };
    match header
        .split(',')
        .skip(1)
        .find(|c| !recorded.iter().any(|r| r == c))
    {
        Some(c) => Err((
            "metrics.csv",
            format!("has a column {c:?} that this run does not record"),
        )),
        None => Ok(()),
    }
}

/// Metric lines a resumed run keeps.
#[derive(Default)]
pub(super) struct Kept {
    csv: Vec<String>,
    jsonl: Vec<String>,
}

pub(super) struct MetricsFiles {
    /// The columns after `epoch`; `None` until the header is written. A
    /// resumed run keeps the columns its files have: a run started by an
    /// earlier version of biprop, which recorded fewer, goes on without
    /// the newer ones rather than with rows longer than its header.
    header: Option<Vec<String>>,
    csv: csv::Writer<std::fs::File>,
    jsonl: std::fs::File,
    dir: PathBuf,
}

impl MetricsFiles {
    /// Opens the metrics files of `dir` for appending, after rewriting them
    /// (atomically) to hold exactly `keep`: the header and rows of the epochs
    /// a resumed run keeps, nothing for a new run.
    pub(super) fn open(dir: &Path, keep: &Kept) -> Result<Self> {
        let csv_path = dir.join("metrics.csv");
        let jsonl_path = dir.join("metrics.jsonl");
        let join = |lines: &[String]| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        crate::fsutil::write_atomic(&csv_path, join(&keep.csv).as_bytes())?;
        crate::fsutil::write_atomic(&jsonl_path, join(&keep.jsonl).as_bytes())?;
        let append = |p: &Path| {
            std::fs::OpenOptions::new()
                .append(true)
                .open(p)
                .map_err(|e| Error::io(p, e))
        };
        let header = keep
            .csv
            .first()
            .map(|h| h.split(',').skip(1).map(String::from).collect());
        Ok(Self {
            header,
            csv: csv::WriterBuilder::new().from_writer(append(&csv_path)?),
            jsonl: append(&jsonl_path)?,
            dir: dir.into(),
        })
    }

    pub(super) fn append(&mut self, r: &EpochRecord) -> Result<()> {
        let csv_err =
            |e: csv::Error| Error::io(self.dir.join("metrics.csv"), std::io::Error::other(e));
        let all = r.columns();
        let header = match &self.header {
            Some(h) => h,
            None => {
                let h: Vec<String> = all.iter().map(|(k, _)| k.to_string()).collect();
                let mut line = vec![FIXED_COLUMNS[0].to_string()];
                line.extend(h.iter().cloned());
                self.csv.write_record(&line).map_err(csv_err)?;
                self.header.insert(h)
            }
        };
        let mut kept = Vec::with_capacity(header.len());
        for name in header {
            match all.iter().find(|(k, _)| k == name) {
                Some(&(k, v)) => kept.push((k, v)),
                None => {
                    return Err(Error::format(
                        self.dir.join("metrics.csv"),
                        format!("has a column {name:?} that this run does not record"),
                    ))
                }
            }
        }
        let mut row = vec![r.epoch.to_string()];
        row.extend(kept.iter().map(|(_, v)| v.to_string()));
        self.csv.write_record(&row).map_err(csv_err)?;
        self.csv
            .flush()
            .map_err(|e| Error::io(self.dir.join("metrics.csv"), e))?;
        let jp = self.dir.join("metrics.jsonl");
        writeln!(self.jsonl, "{}", json_line(r.epoch, kept)).map_err(|e| Error::io(&jp, e))
    }
}

/// The first columns of `metrics.csv`, before the rule's feedback losses
/// and the alignment angles.
pub(super) const FIXED_COLUMNS: [&str; 9] = [
    "epoch",
    "train_loss",
    "train_error",
    "val_loss",
    "val_error",
    "test_loss",
    "test_error",
    "train_seconds",
    "seconds",
];

/// How many epochs `dir/metrics.csv` records (its complete lines after the
/// header): how far a started run has gone, for `biprop sweep --list`. `None`
/// when it has no readable metrics file yet.
pub fn epochs_recorded(dir: &Path) -> Option<usize> {
    let bytes = std::fs::read(dir.join("metrics.csv")).ok()?;
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    Some(lines.saturating_sub(1))
}

/// The wall seconds of every epoch that `dir/metrics.csv` records whole, in
/// epoch order: a run's pace, for `biprop sweep --list`. `None` when the
/// file has no complete row with a finite `seconds` value.
pub fn epoch_seconds(dir: &Path) -> Option<Vec<f64>> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).ok()?;
    // Only whole lines: a row being written has no line end yet.
    let mut lines = text
        .split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'));
    let col = lines.next()?.split(',').position(|c| c == "seconds")?;
    let secs: Vec<f64> = lines
        .filter_map(|r| r.split(',').nth(col)?.parse().ok())
        .filter(|s: &f64| s.is_finite())
        .collect();
    (!secs.is_empty()).then_some(secs)
}

/// The header and first `epochs` rows of `metrics.csv` and the first
/// `epochs` lines of `metrics.jsonl` in `dir`, after checking that each is
/// whole (ends its line), that every value reads back as the text it is,
/// and that the two files hold the same rows (each line of one is rebuilt
/// from the other, text for text): a row cut short or a flipped byte in
/// either file is refused, never carried into the resumed run. Rows beyond
/// `epochs` (those of an epoch whose checkpoint a kill or a full disk
/// stopped) are dropped unread. The error names the file at fault.
pub(super) fn kept_metrics(
    dir: &Path,
    epochs: usize,
) -> std::result::Result<Kept, (&'static str, String)> {
    let read = |name: &'static str, n: usize| -> std::result::Result<Vec<String>, _> {
        let p = dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| (name, e.to_string()))?;
        let mut lines = Vec::with_capacity(n);
        for (i, line) in bytes.split_inclusive(|&b| b == b'\n').take(n).enumerate() {
            let Some(line) = line.strip_suffix(b"\n") else {
                return Err((name, format!("line {} is cut short (no line end)", i + 1)));
            };
            let line = std::str::from_utf8(line)
                .map_err(|_| (name, format!("line {} is not UTF-8 text", i + 1)))?;
            lines.push(line.to_string());
        }
        if lines.len() < n {
            return Err((
                name,
                format!("has {} lines, fewer than the {n} expected", lines.len()),
            ));
        }
        Ok(lines)
    };
    let csv = read("metrics.csv", epochs + 1)?;
    let jsonl = read("metrics.jsonl", epochs)?;
    let header: Vec<&str> = csv[0].split(',').collect();
    if header.len() < FIXED_COLUMNS.len()
        || header[..FIXED_COLUMNS.len()] != FIXED_COLUMNS
        || header.iter().any(|c| c.is_empty())
    {
        return Err(("metrics.csv", "its header is not biprop's".into()));
    }
    for (i, (row, json)) in csv[1..].iter().zip(&jsonl).enumerate() {
        let epoch = i + 1;
        let fields: Vec<&str> = row.split(',').collect();
        if fields.len() != header.len() {
            return Err((
                "metrics.csv",
                format!(
                    "the row of epoch {epoch} has {} fields, the header {}",
                    fields.len(),
                    header.len()
                ),
            ));
        }
        if fields[0] != epoch.to_string() {
            return Err((
                "metrics.csv",
                format!("row {epoch} is of epoch {:?}", fields[0]),
            ));
        }
        // The line `MetricsFiles::append` writes for these values.
        let mut values = Vec::with_capacity(header.len() - 1);
        for (name, text) in header.iter().zip(&fields).skip(1) {
            match text.parse::<f64>() {
                Ok(v) if f64::to_string(&v) == *text => values.push((*name, v)),
                _ => {
                    return Err((
                        "metrics.csv",
                        format!("the row of epoch {epoch} has {name} = {text:?}, not a number"),
                    ))
                }
            }
        }
        let want = json_line(epoch, values);
        if *json != want {
            return Err((
                "metrics.csv",
                format!(
                    "the row of epoch {epoch} differs from line {epoch} of metrics.jsonl \
                     (one of the two is damaged)"
                ),
            ));
        }
    }
    Ok(Kept { csv, jsonl })
}
