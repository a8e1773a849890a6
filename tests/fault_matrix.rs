//! Every fault exona-sim can inject, against the Rust API, with the outcome each must have.
//! Always: no panic, no wait past its deadline, no POST sent twice, and the scan id handed back
//! whenever a scan exists (the one exception is the ambiguous create, whose id never came back;
//! its hint says how to reconcile). The run writes the table to target/tmp/reliability.md and
//! fails when docs/reliability.md, the committed copy, says otherwise. Every cell of the table
//! is decided by events, not by the machine's speed: only the rows that must end by their
//! deadline get a short one.

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::key;
use exona::{Client, Code, Policy, ScanRequest, WaitOptions};
use exona_sim::Config;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Completes,
    Fails(Code),
}

/// Before the scan starts, or while it waits: the server goes away for a while.
#[derive(Clone, Copy, PartialEq)]
enum Outage {
    None,
    BeforeCreate,
    DuringWait,
}

struct Row {
    fault: &'static str,
    website: &'static str,
    outage: Outage,
    expect: Expect,
    /// Words the failure's message must hold: it says what actually happened.
    says: &'static str,
}

const fn row(fault: &'static str, website: &'static str, expect: Expect) -> Row {
    Row { fault, website, outage: Outage::None, expect, says: "" }
}

const fn saying(r: Row, says: &'static str) -> Row {
    Row { says, ..r }
}

use Expect::*;

fn rows() -> Vec<Row> {
    vec![
        row("none (control)", "https://acme.ai", Completes),
        row("scan fails: website unreachable", "https://gone.invalid", Fails(Code::ScanFailed)),
        row("scan fails: too little public data", "https://thin.acme.ai", Fails(Code::ScanFailed)),
        row("scan stuck in processing", "https://stuck.acme.ai", Fails(Code::Timeout)),
        row("2 x 500 on GET", "https://flaky.acme.ai", Completes),
        row("4 x 500 on GET (burst)", "https://burst500.acme.ai", Completes),
        row("500 on every GET", "https://down500.acme.ai", Fails(Code::Server)),
        row("500 on POST after creating", "https://post500.acme.ai", Fails(Code::AmbiguousCreate)),
        row(
            "connection reset before the POST's response (no scan)",
            "https://droppost.acme.ai",
            Fails(Code::AmbiguousCreate),
        ),
        row(
            "connection reset after the POST created the scan",
            "https://lostpost.acme.ai",
            Fails(Code::AmbiguousCreate),
        ),
        row("connection reset on 2 GETs", "https://drop.acme.ai", Completes),
        row("body stops halfway on 2 GETs", "https://halfbody.acme.ai", Completes),
        row("scan vanishes (404 mid-poll)", "https://vanish.acme.ai", Fails(Code::NotFound)),
        row("non-JSON body", "https://garbage.acme.ai", Fails(Code::Protocol)),
        row("truncated JSON body", "https://truncated.acme.ai", Fails(Code::Protocol)),
        row("17 MiB body (over the 16 MiB cap)", "https://huge.acme.ai", Fails(Code::Protocol)),
        row("wrong Content-Type (text/html)", "https://wrongtype.acme.ai", Completes),
        saying(
            row("headers slower than the attempt timeout", "https://slow.acme.ai", Fails(Code::Timeout)),
            "the last poll failed",
        ),
        saying(
            row("503 with Retry-After: 3600 on every GET", "https://busy503.acme.ai", Fails(Code::Timeout)),
            "HTTP 503 SERVICE_UNAVAILABLE",
        ),
        saying(
            row("GET answers with another scan's id", "https://otherid.acme.ai", Fails(Code::Protocol)),
            "answered with scan",
        ),
        saying(
            row("completed without a result object", "https://noresult.acme.ai", Fails(Code::Protocol)),
            "no 'result' object",
        ),
        saying(
            row("400 that echoes the API key everywhere", "https://echokey.acme.ai", Fails(Code::BadRequest)),
            "[redacted]",
        ),
        row("3 x 429 with garbage Retry-After", "https://storm.acme.ai", Completes),
        row("2 x 429 with HTTP-date Retry-After", "https://stormdate.acme.ai", Completes),
        row(
            "429 with Retry-After: 7200 (past the deadline)",
            "https://stormlong.acme.ai",
            Fails(Code::RateLimited),
        ),
        row("Date header 3 h ahead, HTTP-date Retry-After", "https://skew.acme.ai", Completes),
        Row {
            fault: "server away 1 s while waiting",
            website: "https://acme.ai",
            outage: Outage::DuringWait,
            expect: Completes,
            says: "",
        },
        Row {
            fault: "server away when creating (connect refused)",
            website: "https://acme.ai",
            outage: Outage::BeforeCreate,
            expect: Fails(Code::Network),
            says: "",
        },
    ]
}

/// Retries fast enough for a test, slow enough to outlast a one-second outage.
fn matrix_policy() -> Policy {
    Policy {
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(1),
        ..common::fast_policy()
    }
}

/// The deadline of the rows that end by it (a stuck scan, a slow server, a 503 every time).
const DEADLINE: Duration = Duration::from_secs(5);
/// The deadline of the rows that end by an event (an answer, a count of retries): never
/// reached on any machine, however busy (they end in about a second).
const EVENT_DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn every_fault_has_its_outcome_and_loses_nothing() {
    let sim = exona_sim::spawn(Config { slow_response: Duration::from_secs(2), ..Config::fast() }).unwrap();
    let mut table = String::new();
    let mut failures = Vec::new();
    for (n, r) in rows().into_iter().enumerate() {
        let k = key(500 + n as u32);
        let client = Client::with_policy(&k, Some(&sim.base_url), matrix_policy()).unwrap();
        let request = ScanRequest::new("Fault Co", r.website);
        let deadline = if r.expect == Fails(Code::Timeout) { DEADLINE } else { EVENT_DEADLINE };
        let options = WaitOptions { deadline: Some(deadline), ..WaitOptions::default() };
        let started = Instant::now();
        let outcome = match r.outage {
            Outage::None => client.scan_and_wait(&request, &options),
            Outage::BeforeCreate => {
                sim.outage(Duration::from_secs(3));
                std::thread::sleep(Duration::from_millis(100));
                client.scan_and_wait(&request, &options)
            }
            Outage::DuringWait => {
                let created = client.create_scan(&request).unwrap();
                sim.outage(Duration::from_secs(1));
                client.wait(created.id(), &options)
            }
        };
        let elapsed = started.elapsed();
        if r.outage == Outage::BeforeCreate {
            std::thread::sleep(Duration::from_secs(3)); // let the server come back for the next rows
        }
        let stats = sim.stats(&k);
        let (got, scan_id) = match &outcome {
            Ok(scan) => (Completes, Some(scan.id().to_owned())),
            Err(e) => (Fails(e.code), e.scan_id.clone()),
        };
        let id_ok = stats.scans_created == 0 || scan_id.is_some() || got == Fails(Code::AmbiguousCreate);
        // The otherid fault answers with the asked id plus "_other".
        let id_is_ours = scan_id.as_deref().is_none_or(|id| !id.ends_with("_other"));
        let said = outcome.as_ref().err().map(|e| format!("{e} {e:?}")).unwrap_or_default();
        let checks = [
            (got == r.expect, format!("expected {:?}, got {:?}", r.expect, outcome.as_ref().err())),
            (elapsed <= deadline + Duration::from_secs(2), format!("took {elapsed:?}, past the deadline")),
            (stats.posts <= 1, format!("{} POSTs", stats.posts)),
            (id_ok, format!("{} scan(s) exist but no id came back", stats.scans_created)),
            (id_is_ours, format!("the id handed back, {scan_id:?}, is not the scan asked for")),
            (said.contains(r.says), format!("the message does not say {:?}: {said}", r.says)),
            (!said.contains(&k["exo_test_".len()..]), "the API key appears in the error".to_owned()),
        ];
        let failed: Vec<String> = checks.iter().filter(|(ok, _)| !ok).map(|(_, why)| why.clone()).collect();
        for why in &failed {
            failures.push(format!("{}: {why}", r.fault));
        }
        let outcome_text = match got {
            Completes => "completes".to_owned(),
            Fails(code) => code.name().to_owned(),
        };
        writeln!(
            table,
            "| {} | `{}` | {} | {} | {} | {} | {} |",
            r.fault,
            r.website.trim_start_matches("https://"),
            outcome_text,
            stats.posts,
            stats.scans_created,
            if scan_id.is_some() { "yes" } else { "no" },
            if failed.is_empty() {
                format!("all {} checks pass", checks.len())
            } else {
                format!("**FAILED**: {}", failed.join("; "))
            },
        )
        .unwrap();
    }
    // The failures first: a row that failed also makes the table differ.
    assert!(failures.is_empty(), "{failures:#?}\n{table}");
    write_report(&table);
}

fn write_report(table: &str) {
    let doc = format!(
        "# Reliability: the fault matrix\n\n\
         Generated by `cargo test --test fault_matrix` (tests/fault_matrix.rs) into\n\
         `target/tmp/reliability.md`; the test fails when this copy differs. Do not edit by hand.\n\n\
         Each row is one scan through the Rust API (`scan_and_wait`, retries with 100 ms base\n\
         backoff) against exona-sim with the fault its website selects (sim/README.md). The rows\n\
         that end by their deadline have {} s; the others, which end by an answer or a count of\n\
         retries, have {} s, which they never reach.\n\
         Every row checks, and the last column reports after all of them: the expected outcome;\n\
         no wait past the deadline (+2 s for the last attempt); at most one POST; a scan id handed\n\
         back whenever the simulator created a scan, except for an ambiguous create, whose id never\n\
         reached the client (its hint says how to reconcile); that id is the scan asked for; the\n\
         message says what happened (where the row names words); and the API key is in no error.\n\
         \"POSTs\" counts the creates that reached the simulator.\n\n\
         | fault | website | outcome | POSTs | scans created | scan id returned | check |\n\
         |---|---|---|---|---|---|---|\n{table}",
        DEADLINE.as_secs(),
        EVENT_DEADLINE.as_secs()
    );
    let generated = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability.md");
    std::fs::write(&generated, &doc).expect("target/tmp is writable");
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reliability.md");
    let kept = std::fs::read_to_string(committed).unwrap_or_default();
    assert!(
        kept == doc,
        "docs/reliability.md differs from this run's table ({}); if the change is meant, \
         copy it: cp {} docs/reliability.md",
        generated.display(),
        generated.display()
    );
}
