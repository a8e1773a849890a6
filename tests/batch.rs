//! The Rust batch API against exona-sim: one result per request, in finishing order, with
//! its index and scan id; cancel one or all; counts by stage.

mod common;

use std::time::Duration;

use common::{client, key, sim};
use exona::{Batch, Code, Next, ScanRequest, WaitOptions};

fn opts() -> WaitOptions {
    WaitOptions { deadline: Some(Duration::from_secs(20)), ..WaitOptions::default() }
}

fn drain(batch: &Batch) -> Vec<(usize, exona::Outcome)> {
    let mut all = Vec::new();
    loop {
        match batch.next(Some(Duration::from_secs(20))) {
            Next::Ready(i, o) => all.push((i, o)),
            Next::Empty => return all,
            Next::Pending => panic!("a request never finished"),
        }
    }
}

#[test]
fn every_request_ends_with_exactly_one_result() {
    let sim = sim();
    let k = key(800);
    let c = client(&sim, &k);
    let batch = Batch::new(&c);
    for i in 0..60 {
        let site = match i {
            7 => "http://not-https.example".to_owned(),
            8 => "https://gone.invalid".to_owned(),
            _ => format!("https://b{i}.example"),
        };
        assert_eq!(batch.add(ScanRequest::new(format!("Co {i}"), site), &opts()), i);
    }
    let all = drain(&batch);
    let mut seen: Vec<usize> = all.iter().map(|(i, _)| *i).collect();
    seen.sort();
    assert_eq!(seen, (0..60).collect::<Vec<_>>(), "each index exactly once");
    for (i, o) in &all {
        match i {
            7 => assert_eq!(o.as_ref().unwrap_err().code, Code::InvalidArgument),
            8 => assert!(o.as_ref().unwrap_err().scan_id.is_some()),
            _ => assert!(o.is_ok(), "{i}: {o:?}"),
        }
    }
    assert_eq!(batch.counts(), exona::Counts { queued: 0, in_flight: 0, done: 60 });
    assert!(matches!(batch.next(Some(Duration::ZERO)), Next::Empty));
    assert_eq!(sim.stats(&k).posts, 59, "no POST for the invalid one, one for each other");
}

#[test]
fn cancel_one_and_all_keep_the_scan_ids() {
    let sim = sim();
    let k = key(801);
    let c = client(&sim, &k);
    let batch = Batch::new(&c);
    for i in 0..5 {
        batch.add(ScanRequest::new("Stuck", format!("https://stuck.s{i}.example")), &opts());
    }
    // Wait until all five are created (in flight), then cancel one, then the rest.
    for _ in 0..200 {
        if batch.counts().in_flight == 5 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(batch.counts().in_flight, 5);
    batch.cancel(2).unwrap();
    match batch.next(Some(Duration::from_secs(5))) {
        Next::Ready(2, Err(e)) => {
            assert_eq!(e.code, Code::Cancelled);
            assert!(e.scan_id.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert!(batch.cancel(99).is_err());
    batch.cancel_all();
    let rest = drain(&batch);
    assert_eq!(rest.len(), 4);
    assert!(rest
        .iter()
        .all(|(_, o)| o.as_ref().is_err_and(|e| e.code == Code::Cancelled && e.scan_id.is_some())));
    assert_eq!(sim.stats(&k).posts, 5);
}
