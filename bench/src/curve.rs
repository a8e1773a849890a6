//! `exona-bench curve`: on virtual time, 1,000 scans of 30–120 s (`Retry-After: 10`, 100
//! requests per hour) with a fixed number of scans in flight (a new one starts as one ends),
//! from 1 to 200: requests per scan against the mean detection delay, for the adaptive mode
//! and the three fixed ones. Writes the table and docs/adaptive-curve.svg. Then the knob's
//! curve: the same scans at a fixed thrift (`WaitOptions::thrift`, C
//! `exona_scan_options_set_thrift_permille`) from 0 to 1, at 1 and 10 in flight, written to
//! docs/thrift-curve.svg.

use std::sync::Arc;
use std::time::Duration;

use exona::{CancelToken, Client, Goal, Mode, Policy, ScanRequest, VirtualClock, WaitOptions};

#[path = "../../tests/common/virtual_api.rs"]
mod virtual_api;

use virtual_api::VirtualApi;

use super::Collect;

const SCANS: usize = 1000;
const IN_FLIGHT: [usize; 8] = [1, 2, 5, 10, 20, 50, 100, 200];
const MODES: [Mode; 4] = [Mode::Adaptive, Mode::Latency, Mode::Balanced, Mode::Frugal];
const THRIFTS: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];
const THRIFT_IN_FLIGHT: [usize; 2] = [1, 10];

struct Point {
    /// What the point's label on the plot says (scans in flight, or the thrift).
    label: String,
    in_flight: usize,
    per_scan: f64,
    delay: f64,
    failed: usize,
    rate_limited: usize,
    hours: f64,
}

/// `SCANS` scans, `in_flight` at a time, in `mode` (at a fixed `thrift` if given), on virtual
/// time.
fn measure(mode: Mode, in_flight: usize, thrift: Option<f64>) -> Point {
    let clock = Arc::new(VirtualClock::new());
    let api = VirtualApi::seeded(clock.clone(), (30.0, 120.0), 10, 100, Duration::from_secs(3600), 11);
    let policy = Policy { mode, ..Policy::default() };
    let client = Client::with_transport("http://virtual/api/v1".into(), api.clone(), clock.clone(), policy);
    let sink = Arc::new(Collect::default());
    let options = WaitOptions { deadline_from_creation: true, thrift, ..WaitOptions::default() };
    let submit = |from: usize, to: usize| {
        for i in from..to {
            let request = ScanRequest::new(format!("Company {i}"), format!("https://c{i}.example"));
            client
                .submit(Goal::Create { request, create_only: false }, &options, sink.clone())
                .expect("submit");
        }
    };
    let mut submitted = in_flight.min(SCANS);
    submit(0, submitted);
    let idle = CancelToken::new();
    loop {
        let more = client.drive(&idle);
        let ended = sink.done.lock().unwrap().len();
        let target = (ended + in_flight).min(SCANS);
        if target > submitted {
            submit(submitted, target);
            submitted = target;
        } else if !more {
            break;
        }
    }
    let done = std::mem::take(&mut *sink.done.lock().unwrap());
    if std::env::var_os("CURVE_DEBUG").is_some() {
        for (_, o) in &done {
            if let Err(e) = o {
                eprintln!("{mode:?} {in_flight}: {:?}: {}", e.code, e.message);
            }
        }
    }
    let log = api.log();
    let detections = api.detections();
    Point {
        label: thrift.map_or_else(|| in_flight.to_string(), |t| format!("{t}")),
        in_flight,
        per_scan: log.len() as f64 / SCANS as f64,
        delay: detections.iter().map(Duration::as_secs_f64).sum::<f64>() / detections.len().max(1) as f64,
        failed: done.iter().filter(|(_, o)| o.is_err()).count(),
        rate_limited: log.iter().filter(|l| l.status == 429).count(),
        hours: exona::Clock::now(&*clock).as_secs_f64() / 3600.0,
    }
}

pub fn run() {
    println!("## The adaptive curve: 1,000 scans on virtual time\n");
    println!("Scans of 30–120 s, Retry-After 10 s, 100 requests per hour, default prior; a new scan starts as one ends.\n");
    println!("| mode | in flight | requests per scan | mean detection delay (s) | failed | 429s | hours |");
    println!("|---|---|---|---|---|---|---|");
    let mut series = Vec::new();
    for mode in MODES {
        let points: Vec<Point> = IN_FLIGHT.iter().map(|&n| measure(mode, n, None)).collect();
        for p in &points {
            println!(
                "| {} | {} | {:.2} | {:.1} | {} | {} | {:.1} |",
                format!("{mode:?}").to_lowercase(),
                p.in_flight,
                p.per_scan,
                p.delay,
                p.failed,
                p.rate_limited,
                p.hours
            );
        }
        series.push((format!("{mode:?}").to_lowercase(), points));
    }
    let title = "1,000 scans of 30–120 s at 100 requests per hour: requests per scan against detection delay, by scans in flight";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/adaptive-curve.svg");
    std::fs::write(path, svg(title, "labels: scans in flight", &series))
        .expect("docs/adaptive-curve.svg is writable");
    println!("\nPlotted in docs/adaptive-curve.svg.\n");

    println!("## The knob: a fixed thrift, 1,000 scans on virtual time\n");
    println!("The same scans, each call's polls planned at a fixed thrift whatever the window (`WaitOptions::thrift`, C `exona_scan_options_set_thrift_permille`).\n");
    println!("| thrift | in flight | requests per scan | mean detection delay (s) | failed | 429s | hours |");
    println!("|---|---|---|---|---|---|---|");
    let mut series = Vec::new();
    for in_flight in THRIFT_IN_FLIGHT {
        let points: Vec<Point> =
            THRIFTS.iter().map(|&t| measure(Mode::Adaptive, in_flight, Some(t))).collect();
        for p in &points {
            println!(
                "| {} | {} | {:.2} | {:.1} | {} | {} | {:.1} |",
                p.label, p.in_flight, p.per_scan, p.delay, p.failed, p.rate_limited, p.hours
            );
        }
        series.push((format!("{in_flight} in flight"), points));
    }
    let title = "1,000 scans of 30–120 s at 100 requests per hour, at a fixed thrift: requests per scan against detection delay";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/thrift-curve.svg");
    std::fs::write(path, svg(title, "labels: the thrift", &series))
        .expect("docs/thrift-curve.svg is writable");
    println!("\nPlotted in docs/thrift-curve.svg.\n");
}

/// A plain SVG plot: x the mean detection delay, y requests per scan, one line per series
/// through its points (each labelled).
fn svg(title: &str, legend_note: &str, series: &[(String, Vec<Point>)]) -> String {
    let (w, h, left, bottom, top, right) = (760.0, 480.0, 70.0, 60.0, 40.0, 150.0);
    let all = series.iter().flat_map(|(_, p)| p.iter());
    let x_max = all.clone().map(|p| p.delay).fold(10.0, f64::max) * 1.05;
    let y_max = all.map(|p| p.per_scan).fold(2.0, f64::max) * 1.05;
    let x = |v: f64| left + (w - left - right) * v / x_max;
    let y = |v: f64| h - bottom - (h - bottom - top) * v / y_max;
    let colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{title}</text>\n",
        w / 2.0
    );
    // Axes, ticks and labels.
    out += &format!(
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{0}\" stroke=\"black\"/>\n",
        h - bottom,
        w - right
    );
    for i in 0..=5 {
        let (xv, yv) = (x_max * i as f64 / 5.0, y_max * i as f64 / 5.0);
        out += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{xv:.0}</text>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{yv:.1}</text>\n",
            x(xv),
            h - bottom + 18.0,
            left - 6.0,
            y(yv) + 4.0
        );
    }
    out += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">mean detection delay (s)</text>\n\
         <text x=\"18\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {:.1})\">requests per scan (POST included)</text>\n",
        (left + w - right) / 2.0,
        h - 18.0,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        let path: Vec<String> =
            points.iter().map(|p| format!("{:.1},{:.1}", x(p.delay), y(p.per_scan))).collect();
        out += &format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n",
            path.join(" ")
        );
        for p in points {
            out += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"{color}\">{}</text>\n",
                x(p.delay),
                y(p.per_scan),
                x(p.delay) + 5.0,
                y(p.per_scan) - 5.0,
                p.label
            );
        }
        let ly = top + 20.0 + 20.0 * i as f64;
        out += &format!(
            "<line x1=\"{0:.1}\" y1=\"{ly:.1}\" x2=\"{1:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{2:.1}\" y=\"{3:.1}\">{4}</text>\n",
            w - right + 15.0,
            w - right + 40.0,
            w - right + 46.0,
            ly + 4.0,
            name
        );
    }
    out += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{legend_note}</text>\n</svg>\n",
        w - right + 15.0,
        top + 110.0
    );
    out
}
