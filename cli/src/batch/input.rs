//! A portfolio file: CSV with a header naming `company_name` and `company_website` (other
//! columns are carried through to the output), or JSON Lines with those fields.

use std::path::Path;

use serde_json::{Map, Value};

use crate::Failure;

/// One data row of the input.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// 1-based number among the data rows (the header is not one): the row's name in OUTPUT.
    pub number: u64,
    pub company_name: String,
    pub company_website: String,
    /// The row's other columns (CSV values as strings), carried to OUTPUT.
    pub extra: Map<String, Value>,
}

pub struct Input {
    pub rows: Vec<Row>,
    /// The other columns, in the input's order (for a CSV output's header).
    pub extra_columns: Vec<String>,
}

pub fn is_json_lines(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("jsonl" | "ndjson" | "json"))
}

pub fn read(path: &Path) -> Result<Input, Failure> {
    let input = if is_json_lines(path) { read_json_lines(path)? } else { read_csv(path)? };
    Ok(unshadowed(input))
}

/// The fields OUTPUT writes of its own (DESIGN.md 7.3, and a CSV output's risk columns).
fn is_the_commands_own(column: &str) -> bool {
    matches!(
        column,
        "row"
            | "company_name"
            | "company_website"
            | "status"
            | "scan_id"
            | "code"
            | "message"
            | "result"
            | "overall_risk_level"
    ) || crate::summary::DIMENSIONS.contains(&column)
}

/// Carried columns never shadow the command's own: an input column named `status` (or
/// `row`, `scan_id`, ...) is carried as `input_status`, so that neither a reader of OUTPUT nor
/// a resume mistakes the input's value for the row's outcome.
fn unshadowed(mut input: Input) -> Input {
    let rename = |column: &str| {
        let mut name = column.to_owned();
        while is_the_commands_own(&name) {
            name = format!("input_{name}");
        }
        name
    };
    if !input.extra_columns.iter().any(|c| is_the_commands_own(c)) {
        return input;
    }
    for row in &mut input.rows {
        row.extra = std::mem::take(&mut row.extra).into_iter().map(|(k, v)| (rename(&k), v)).collect();
    }
    input.extra_columns = input.extra_columns.iter().map(|c| rename(c)).collect();
    input
}

fn read_csv(path: &Path) -> Result<Input, Failure> {
    let name = path.display();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| Failure::usage(format!("cannot read {name}: {e}")))?;
    let headers = reader.headers().map_err(|e| Failure::usage(format!("{name}:1: {e}")))?.clone();
    let column = |wanted: &str| {
        headers.iter().position(|h| h.trim() == wanted).ok_or_else(|| {
            let found: Vec<&str> = headers.iter().collect();
            Failure::usage(format!(
                "{name}:1: no {wanted} column (the header line names: {}); the header needs company_name and company_website",
                found.join(", ")
            ))
        })
    };
    let (name_at, website_at) = (column("company_name")?, column("company_website")?);
    let extra_columns: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != name_at && *i != website_at)
        .map(|(i, h)| (i, h.trim().to_owned()))
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            Failure::usage(format!("{name}:{line}: {}", csv_reason(&e)))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize, what: &str| {
            record.get(i).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).ok_or_else(|| {
                Failure::usage(format!("{name}:{line}: the {what} column (column {}) is empty", i + 1))
            })
        };
        rows.push(Row {
            number: rows.len() as u64 + 1,
            company_name: field(name_at, "company_name")?,
            company_website: field(website_at, "company_website")?,
            extra: extra_columns
                .iter()
                .map(|(i, h)| (h.clone(), Value::String(record.get(*i).unwrap_or("").to_owned())))
                .collect(),
        });
    }
    Ok(Input { rows, extra_columns: extra_columns.into_iter().map(|(_, h)| h).collect() })
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".to_owned(),
        _ => e.to_string(),
    }
}

fn read_json_lines(path: &Path) -> Result<Input, Failure> {
    let name = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("cannot read {name}: {e}")))?;
    let mut rows = Vec::new();
    let mut extra_columns: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| Failure::usage(format!("{name}:{line_no}: not a JSON object ({e})")))?;
        let Value::Object(mut object) = value else {
            return Err(Failure::usage(format!("{name}:{line_no}: not a JSON object")));
        };
        let mut field = |key: &str| match object.remove(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            _ => {
                Err(Failure::usage(format!("{name}:{line_no}: no {key} (a non-empty string) in the object")))
            }
        };
        let (company_name, company_website) = (field("company_name")?, field("company_website")?);
        for key in object.keys() {
            if !extra_columns.contains(key) {
                extra_columns.push(key.clone());
            }
        }
        rows.push(Row { number: rows.len() as u64 + 1, company_name, company_website, extra: object });
    }
    Ok(Input { rows, extra_columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_columns_never_shadow_the_commands_own() {
        let d = std::env::temp_dir().join(format!("exona-cli-shadow-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("in.csv");
        std::fs::write(
            &p,
            "company_name,company_website,status,scan_id,policy\nA,https://a.example,active,X1,P1\n",
        )
        .unwrap();
        let input = read(&p).unwrap();
        assert_eq!(input.extra_columns, ["input_status", "input_scan_id", "policy"]);
        let row = &input.rows[0];
        assert_eq!(row.extra["input_status"], "active");
        assert_eq!(row.extra["input_scan_id"], "X1");
        assert!(!row.extra.contains_key("status"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn file(name: &str, text: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("exona-cli-input-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn csv_with_quotes_a_bom_and_extra_columns() {
        let p = file(
            "a.csv",
            "\u{feff}policy,company_name,company_website\n\
             P-1,\"Quoted, Inc.\",https://quoted.example\n\
             \n\
             P-2,\"The \"\"Best\"\" Co\",\"https://best.example\"\n\
             P-3,\"Multi\nLine Ltd\",https://multi.example\n",
        );
        let input = read(&p).unwrap();
        assert_eq!(input.extra_columns, vec!["policy"]);
        let names: Vec<&str> = input.rows.iter().map(|r| r.company_name.as_str()).collect();
        assert_eq!(names, vec!["Quoted, Inc.", "The \"Best\" Co", "Multi\nLine Ltd"]);
        assert_eq!(input.rows[1].number, 2, "rows are numbered among data rows");
        assert_eq!(input.rows[2].extra["policy"], "P-3");
    }

    #[test]
    fn csv_errors_name_the_line_and_column() {
        let missing = file("b.csv", "name,website\nA,https://a.example\n");
        let e = read(&missing).err().unwrap().message;
        assert!(e.ends_with("b.csv:1: no company_name column (the header line names: name, website); the header needs company_name and company_website"), "{e}");
        let ragged = file("c.csv", "company_name,company_website\nA,https://a.example\nB\n");
        let e = read(&ragged).err().unwrap().message;
        assert!(e.contains("c.csv:3: 1 fields where the header has 2"), "{e}");
        let empty = file("d.csv", "company_name,company_website\nA,https://a.example\n,https://b.example\n");
        let e = read(&empty).err().unwrap().message;
        assert!(e.contains("d.csv:3: the company_name column (column 1) is empty"), "{e}");
        let unclosed = file("e.csv", "company_name,company_website\n\"A,https://a.example\n");
        assert_eq!(read(&unclosed).err().unwrap().status, 2);
    }

    #[test]
    fn json_lines_carry_their_other_fields() {
        let p = file(
            "f.jsonl",
            "{\"company_name\":\"A\",\"company_website\":\"https://a.example\",\"policy\":7}\n\n{\"company_name\":\"B\",\"company_website\":\"https://b.example\"}\n",
        );
        let input = read(&p).unwrap();
        assert_eq!(input.rows.len(), 2);
        assert_eq!(input.rows[0].extra["policy"], 7);
        let bad = file("g.jsonl", "{\"company_name\":\"A\"}\n");
        let e = read(&bad).err().unwrap().message;
        assert!(e.contains("g.jsonl:1: no company_website"), "{e}");
    }
}
