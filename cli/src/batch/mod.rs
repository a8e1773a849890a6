//! `exona batch INPUT --output OUTPUT`: a portfolio through one journaled batch. Rows already
//! in OUTPUT are neither run nor written again; the journal (`--state`, default OUTPUT.state)
//! makes a resumed run wait on created scans by id instead of creating them again.

mod input;
mod output;
mod progress;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use exona::{Batch, Client, Code, Next, ScanRequest, WaitOptions};

use crate::interrupt::Interrupt;
use crate::Failure;
use output::RowStatus;

pub struct BatchArgs {
    pub input: PathBuf,
    pub output: PathBuf,
    pub state: Option<PathBuf>,
    pub max_age_days: Option<u32>,
    pub reconcile: bool,
    pub timeout: Duration,
}

pub fn run(client: &Client, a: BatchArgs, interrupt: &Interrupt) -> Result<(), Failure> {
    let input = input::read(&a.input)?;
    let state = a.state.clone().unwrap_or_else(|| {
        let mut s = a.output.clone().into_os_string();
        s.push(".state");
        PathBuf::from(s)
    });
    output::check_path(&a.output, "the output", &a.input)?;
    output::check_path(&state, "the state file", &a.input)?;
    // The journal first: its lock says whether another run owns this output, before the
    // output is opened (let alone repaired or written).
    let batch = Batch::new(client);
    batch.set_journal(&state).map_err(|e| Failure::output(format!("the state file: {}", e.message)))?;
    batch.set_reconcile(a.reconcile);
    let (mut out, written) = output::open(&a.output, &input.extra_columns)?;

    let request_of = |row: &input::Row| ScanRequest {
        max_age_days: a.max_age_days,
        ..ScanRequest::new(&row.company_name, &row.company_website)
    };
    let requests: Vec<(u64, ScanRequest)> = input.rows.iter().map(|r| (r.number, request_of(r))).collect();
    refuse_a_changed_input(&batch, &requests, &a)?;

    let options = WaitOptions { deadline: Some(a.timeout), ..WaitOptions::default() };
    let mut rows_of = HashMap::new();
    for row in input.rows.iter().filter(|r| !written.contains_key(&r.number)) {
        rows_of.insert(batch.add_row(row.number, request_of(row), &options), row);
    }
    let errors_before = written.values().filter(|s| **s == RowStatus::Error).count();
    let mut ended = progress::Ended::default();
    let mut progress = progress::Progress::new(input.rows.len() as u64, written.len() as u64);
    let mut stopping = false;
    let mut unfinished = 0;
    // Rows whose create was sent without an answer: before an earlier run stopped (from the
    // journal), and in this run (a timeout or a dropped connection on the create).
    let (mut ambiguous_before, mut ambiguous_now) = (0, 0);
    loop {
        if interrupt.happened() && !stopping {
            stopping = true;
            batch.cancel_all();
        }
        match batch.next(Some(Duration::from_millis(200))) {
            Next::Ready(index, outcome) => {
                let row = rows_of[&index];
                if stopping && matches!(&outcome, Err(e) if e.code == Code::Cancelled) {
                    // Not ended: the next run resumes it (by scan id when it has one).
                    unfinished += 1;
                    continue;
                }
                if let Err(e) = &outcome {
                    if e.code == Code::AmbiguousCreate {
                        // Its create was sent, unanswered: left out of OUTPUT, for a run with
                        // --reconcile to settle.
                        if e.message.contains(exona::batch::SENT_BEFORE_THE_BATCH_STOPPED) {
                            ambiguous_before += 1;
                        } else {
                            ambiguous_now += 1;
                        }
                        continue;
                    }
                }
                let status = out.write(row, &outcome).map_err(|e| {
                    Failure::output(format!(
                        "cannot write {}: {e} (the journal keeps the row for the next run)",
                        a.output.display()
                    ))
                })?;
                match status {
                    RowStatus::Completed => ended.completed += 1,
                    RowStatus::Failed => ended.failed += 1,
                    RowStatus::Error => ended.errors += 1,
                }
                progress.update(&ended, &batch.status());
            }
            Next::Pending => progress.update(&ended, &batch.status()),
            Next::Empty => break,
        }
    }
    let status = batch.status();
    progress.finish();
    let total = input.rows.len();
    // Rows in OUTPUT: those written before and those this run wrote; a cancelled or
    // ambiguous row is not among them.
    let done = written.len() + ended.total();
    let errors = errors_before + ended.errors;
    if stopping {
        return Err(Failure::interrupted(
            interrupt,
            format!(
            "stopped on {}: {done} of {total} rows in {}, {} to go ({unfinished} cancelled in flight or queued); run \
             the same command again to resume",
            interrupt.by(),
            a.output.display(),
            total - done
        ),
        ));
    }
    let summary =
        format!("{done} of {total} rows in {}: {}", a.output.display(), progress::describe(&ended, &status));
    if ambiguous_before + ambiguous_now > 0 {
        let mut which = Vec::new();
        if ambiguous_before > 0 {
            which.push(format!("{ambiguous_before} when an earlier run stopped"));
        }
        if ambiguous_now > 0 {
            which.push(format!(
                "{ambiguous_now} in this run (its answer never came: a timeout or a dropped connection)"
            ));
        }
        return Err(Failure::failed(format!(
            "{summary}; {} row(s) had their create sent with no answer kept ({}): a scan may exist for each. \
             Run the same command with --reconcile to settle them (each is created again with max_age_days \
             once a twin would have completed, so a twin is reused, not duplicated)",
            ambiguous_before + ambiguous_now,
            which.join("; ")
        )));
    }
    if errors > 0 {
        return Err(Failure::failed(format!(
            "{summary}; {errors} row(s) ended in error (status \"error\" in the output)"
        )));
    }
    eprintln!("exona: {summary}");
    Ok(())
}

/// A resume whose input changed since the journal was written (a row inserted, removed or
/// edited) is refused before anything is sent or written: row numbers would name other
/// companies, so rows would be skipped, errors written or companies created twice.
fn refuse_a_changed_input(
    batch: &Batch,
    requests: &[(u64, ScanRequest)],
    a: &BatchArgs,
) -> Result<(), Failure> {
    let pairs: Vec<(u64, &ScanRequest)> = requests.iter().map(|(n, r)| (*n, r)).collect();
    let changed = batch.changed_rows(&pairs).map_err(|e| Failure::output(e.message))?;
    if changed.is_empty() {
        return Ok(());
    }
    let first: Vec<String> = changed.iter().take(5).map(u64::to_string).collect();
    let more = if changed.len() > 5 { format!(" and {} more", changed.len() - 5) } else { String::new() };
    Err(Failure::usage(format!(
        "{} changed since the run that wrote {}: row(s) {}{more} now name other companies or \
         websites. Nothing was sent. Resume with the input as it was, or start a new run with \
         another --output (--max-age-days and --timeout may change between runs; rows may not)",
        a.input.display(),
        a.output.display(),
        first.join(", ")
    )))
}
