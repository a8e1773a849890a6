//! OUTPUT: one line per input row, written (and flushed) as the row ends, in the format of
//! DESIGN.md 7.3: JSON Lines, or CSV for a `.csv` path. Opened again after a crash, it tells
//! which rows are written already (they are not run or written again), and loses only a line
//! the crash cut short. It must be a regular file that is not the input: a resumable run
//! reads it back (a device such as /dev/full reads forever, a pipe cannot be read back), and
//! a file it cannot read as its own rows is never truncated: the run is refused instead.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use exona::{Code, Outcome};
use serde_json::{json, Map, Value};

use super::input::Row;
use crate::summary::DIMENSIONS;
use crate::Failure;

/// How a row ended, as OUTPUT says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowStatus {
    Completed,
    /// The scan failed (the API's verdict on the company).
    Failed,
    /// The row ended in an error (input refused, time out, ...).
    Error,
}

impl RowStatus {
    pub fn of(outcome: &Outcome) -> RowStatus {
        match outcome {
            Ok(_) => RowStatus::Completed,
            Err(e) if e.code == Code::ScanFailed => RowStatus::Failed,
            Err(_) => RowStatus::Error,
        }
    }

    fn word(self) -> &'static str {
        match self {
            RowStatus::Completed => "completed",
            RowStatus::Failed => "failed",
            RowStatus::Error => "error",
        }
    }

    fn parse(word: &str) -> Option<RowStatus> {
        match word {
            "completed" => Some(RowStatus::Completed),
            "failed" => Some(RowStatus::Failed),
            "error" => Some(RowStatus::Error),
            _ => None,
        }
    }
}

const FIXED_CSV_COLUMNS: [&str; 7] =
    ["row", "company_name", "company_website", "status", "scan_id", "code", "message"];

pub struct Output {
    file: File,
    csv: bool,
    extra_columns: Vec<String>,
}

/// Refuses an OUTPUT (or journal) that is not a regular file, or is the input itself.
pub fn check_path(path: &Path, what: &str, input: &Path) -> Result<(), Failure> {
    let name = path.display();
    let Ok(meta) = std::fs::metadata(path) else { return Ok(()) }; // not there yet: created
    if !meta.is_file() {
        return Err(Failure::output(format!(
            "{what} {name} is not a regular file (a device, a pipe or a directory): a batch reads its \
             output back to resume, so it writes to a file; name one, then read it (e.g. tail -f)"
        )));
    }
    if let Ok(input_meta) = std::fs::metadata(input) {
        if same_file(&meta, &input_meta) {
            return Err(Failure::output(format!(
                "{what} {name} is the input file {}: it would be overwritten; name another file",
                input.display()
            )));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

/// Opens OUTPUT for appending (created 0600: it holds scan results), and returns the rows it
/// holds already (row number → status).
pub fn open(path: &Path, extra_columns: &[String]) -> Result<(Output, BTreeMap<u64, RowStatus>), Failure> {
    let name = path.display();
    let csv = path.extension().and_then(|e| e.to_str()) == Some("csv");
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file =
        options.open(path).map_err(|e| Failure::output(format!("cannot open {name} for writing: {e}")))?;
    let text = std::fs::read(path).map_err(|e| Failure::output(format!("cannot read {name}: {e}")))?;
    let (written, good_len) = if csv { written_csv(&text) } else { written_json_lines(&text) };
    let rest = &text[good_len as usize..];
    if rest.contains(&b'\n') || !(rest.is_empty() || cut_short_line_of_ours(rest, csv, good_len == 0)) {
        // A whole line that is not a row of ours: this is not our output (or it was edited).
        // Truncating would destroy it; refuse instead.
        let line = text[..good_len as usize].iter().filter(|b| **b == b'\n').count() + 1;
        return Err(Failure::output(format!(
            "{name}:{line}: not a row this command wrote; the file is left as it is. Name another \
             --output (or move this one away to start over)"
        )));
    }
    if good_len < text.len() as u64 {
        // The last line, cut short by a crash (no newline): dropped, its row runs again.
        file.set_len(good_len).map_err(|e| Failure::output(format!("cannot repair {name}: {e}")))?;
    }
    file.seek(SeekFrom::End(0)).map_err(|e| Failure::output(format!("cannot write {name}: {e}")))?;
    let mut out = Output { file, csv, extra_columns: extra_columns.to_vec() };
    if csv && good_len == 0 {
        let header: Vec<String> = FIXED_CSV_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .chain(std::iter::once("overall_risk_level".to_owned()))
            .chain(DIMENSIONS.iter().map(|d| d.to_string()))
            .chain(extra_columns.iter().cloned())
            .collect();
        out.write_csv_record(&header).map_err(|e| Failure::output(format!("cannot write {name}: {e}")))?;
    }
    Ok((out, written))
}

/// Rows in a JSON Lines OUTPUT, and the length of its whole lines that parse.
fn written_json_lines(text: &[u8]) -> (BTreeMap<u64, RowStatus>, u64) {
    let mut rows = BTreeMap::new();
    let mut good = 0u64;
    let mut start = 0usize;
    while let Some(nl) = text[start..].iter().position(|b| *b == b'\n') {
        let line = &text[start..start + nl];
        let Some((row, status)) = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| Some((v.get("row")?.as_u64()?, RowStatus::parse(v.get("status")?.as_str()?)?)))
        else {
            break;
        };
        rows.insert(row, status);
        start += nl + 1;
        good = start as u64;
    }
    (rows, good)
}

/// Whether a last line without its newline can be the start of a line this command writes
/// (a crash cut it short): the start of the CSV header, a CSV row (its number first), or a
/// JSON object. Anything else is somebody's file.
fn cut_short_line_of_ours(rest: &[u8], csv: bool, at_start: bool) -> bool {
    match (csv, at_start) {
        (true, true) => FIXED_CSV_COLUMNS.join(",").as_bytes().starts_with(rest) || has_our_header(rest),
        (true, false) => rest.first().is_some_and(u8::is_ascii_digit),
        (false, _) => rest.first() == Some(&b'{'),
    }
}

/// Whether a CSV's first line is the header this command writes (its first fixed columns).
fn has_our_header(text: &[u8]) -> bool {
    let first = text.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let expected = FIXED_CSV_COLUMNS.join(",");
    first.starts_with(expected.as_bytes())
}

/// Rows in a CSV OUTPUT (after its header), and the length of its whole records.
fn written_csv(text: &[u8]) -> (BTreeMap<u64, RowStatus>, u64) {
    let mut rows = BTreeMap::new();
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text);
    let mut good = 0u64;
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    while let Ok(true) = reader.read_byte_record(&mut record) {
        let end = reader.position().byte();
        // A record counts only when its line ended (the crash may have cut the last one).
        if end == 0 || text.get(end as usize - 1) != Some(&b'\n') {
            break;
        }
        if first && !has_our_header(text) {
            break;
        }
        if !first {
            let row = std::str::from_utf8(&record[0]).ok().and_then(|r| r.parse::<u64>().ok());
            let status = record.get(3).and_then(|s| std::str::from_utf8(s).ok()).and_then(RowStatus::parse);
            match (row, status) {
                (Some(row), Some(status)) => {
                    rows.insert(row, status);
                }
                _ => break,
            }
        }
        first = false;
        good = end;
    }
    (rows, good)
}

impl Output {
    /// Writes the row's line and flushes it (a `kill -9` right after loses nothing).
    pub fn write(&mut self, row: &Row, outcome: &Outcome) -> std::io::Result<RowStatus> {
        let status = RowStatus::of(outcome);
        let (scan, scan_id, code, message) = match outcome {
            Ok(scan) => (Some(scan), Some(scan.id().to_owned()), Code::Ok, None),
            Err(e) => (e.scan.as_ref(), e.scan_id.clone(), e.code, Some(e.message.clone())),
        };
        let result =
            scan.filter(|_| status == RowStatus::Completed).and_then(|s| s.json().get("result").cloned());
        if self.csv {
            let risk = |p: &str| {
                result.as_ref().and_then(|r| r.pointer(&format!("/risk_assessment/{p}"))).map_or(
                    String::new(),
                    |v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                )
            };
            let mut record = vec![
                row.number.to_string(),
                row.company_name.clone(),
                row.company_website.clone(),
                status.word().to_owned(),
                scan_id.unwrap_or_default(),
                code.name().to_owned(),
                message.unwrap_or_default(),
                risk("overall_risk_level"),
            ];
            record.extend(DIMENSIONS.iter().map(|d| risk(&format!("{d}/score"))));
            record.extend(self.extra_columns.iter().map(|c| match row.extra.get(c) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            }));
            self.write_csv_record(&record)?;
        } else {
            let mut line = Map::new();
            // Carried columns first, so the contract's fields win a clash of names.
            for (k, v) in &row.extra {
                line.insert(k.clone(), v.clone());
            }
            let fixed = json!({
                "row": row.number,
                "company_name": row.company_name,
                "company_website": row.company_website,
                "status": status.word(),
                "scan_id": scan_id,
                "code": code.name(),
                "message": message,
                "result": result,
            });
            if let Value::Object(fixed) = fixed {
                line.extend(fixed);
            }
            let mut text = serde_json::to_string(&Value::Object(line)).map_err(std::io::Error::other)?;
            text.push('\n');
            self.write_line(text.as_bytes())?;
        }
        self.file.flush()?;
        Ok(status)
    }

    fn write_csv_record(&mut self, fields: &[String]) -> std::io::Result<()> {
        let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
        w.write_record(fields.iter().map(|f| formula_safe(f).into_owned())).map_err(std::io::Error::other)?;
        let bytes = w.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
        self.write_line(&bytes)?;
        self.file.flush()
    }

    /// One write per line: a crash leaves whole lines and at most one cut short. Built for the
    /// crash harness, the line is written in two halves with the `output_half_written` crash
    /// point between them.
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        if cfg!(feature = "crash-points") {
            let half = line.len() / 2;
            self.file.write_all(&line[..half])?;
            self.file.flush()?;
            exona::crash::point("output_half_written");
            return self.file.write_all(&line[half..]);
        }
        self.file.write_all(line)
    }
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, a tab or a carriage
/// return first: OWASP's "CSV injection") is written with a leading `'`, which spreadsheets
/// show as text. Input cells (names, carried columns) and messages are the caller's data, not
/// formulas; numbers the command writes itself (scores, row numbers) never start so.
fn formula_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_input_cell_becomes_a_spreadsheet_formula() {
        assert_eq!(formula_safe("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        for cell in ["+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert!(formula_safe(cell).starts_with('\''), "{cell:?}");
        }
        for cell in ["Acme AI Ltd", "https://acme.ai", "42", ""] {
            assert_eq!(formula_safe(cell), cell);
        }
    }

    #[test]
    fn a_file_that_is_not_our_output_is_refused_not_truncated() {
        let d = std::env::temp_dir().join(format!("exona-cli-foreign-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for (name, text) in [
            ("portfolio.csv", "company_name,company_website\nAcme,https://acme.ai\n"),
            (
                "notes.jsonl",
                "{\"row\":1,\"status\":\"completed\"}\nnot json\n{\"row\":2,\"status\":\"error\"}\n",
            ),
            ("one-line.jsonl", "hello, no newline"),
        ] {
            let p = d.join(name);
            std::fs::write(&p, text).unwrap();
            let Err(e) = open(&p, &[]) else { panic!("{name} was taken as an output") };
            assert_eq!(e.status, 3, "{}", e.message);
            assert!(e.message.contains("not a row this command wrote"), "{}", e.message);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), text, "{name} was changed");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_line_cut_short_is_dropped_and_written_rows_are_known() {
        let text =
            b"{\"row\":1,\"status\":\"completed\"}\n{\"row\":3,\"status\":\"error\"}\n{\"row\":2,\"sta";
        let (rows, good) = written_json_lines(text);
        assert_eq!(
            rows.into_iter().collect::<Vec<_>>(),
            vec![(1, RowStatus::Completed), (3, RowStatus::Error)]
        );
        assert_eq!(good, 58);
        let csv = b"row,company_name,company_website,status,scan_id,code,message\n1,\"A, Inc.\",https://a.example,completed\n2,\"B\nLtd\",https://b.example,failed\n3,C,https://c";
        let (rows, good) = written_csv(csv);
        assert_eq!(
            rows.into_iter().collect::<Vec<_>>(),
            vec![(1, RowStatus::Completed), (2, RowStatus::Failed)]
        );
        assert_eq!(&csv[..good as usize], &csv[..csv.len() - b"3,C,https://c".len()]);
    }
}
