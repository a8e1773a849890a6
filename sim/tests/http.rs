//! exona-sim at the HTTP level: the documented statuses, codes, headers and lifecycle.

use std::time::Duration;

use exona_sim::{spawn, Config, SimHandle};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

const TEST_KEY: &str = "exo_test_abcdefghijklmnopqrstuvwxyz0123456789";
const LIVE_KEY: &str = "exo_live_abcdefghijklmnopqrstuvwxyz0123456789";

struct Api {
    sim: SimHandle,
    http: Client,
}

impl Api {
    fn new(config: Config) -> Api {
        Api { sim: spawn(config).unwrap(), http: Client::new() }
    }
    fn post(&self, key: Option<&str>, body: &Value) -> Response {
        let mut r =
            self.http.post(format!("{}/scans", self.sim.base_url)).header("content-type", "application/json");
        if let Some(k) = key {
            r = r.header("authorization", format!("Bearer {k}"));
        }
        r.body(body.to_string()).send().unwrap()
    }
    fn get(&self, key: &str, id: &str) -> Response {
        self.http
            .get(format!("{}/scans/{id}", self.sim.base_url))
            .header("authorization", format!("Bearer {key}"))
            .send()
            .unwrap()
    }
}

fn acme() -> Value {
    json!({"company_name": "Acme AI Ltd", "company_website": "https://acme.ai"})
}

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

/// Checks the headers every response carries, and returns the JSON body.
fn checked(r: Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status);
    let rid = header(&r, "x-request-id").expect("X-Request-ID");
    assert!(rid.starts_with("req_") && rid.len() == 19, "{rid}");
    for h in ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "date"] {
        assert!(header(&r, h).is_some(), "{h} missing on {status}");
    }
    assert_eq!(header(&r, "content-type").as_deref(), Some("application/json"));
    let body: Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    if status >= 400 {
        assert_eq!(body["error"]["request_id"], json!(rid), "envelope request_id equals the header");
        assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string());
    }
    body
}

#[test]
fn lifecycle_processing_then_completed() {
    // Scans of an hour: the first GET sees "processing" however slow the machine; the scan
    // completes when the test says so.
    let api = Api::new(Config {
        scan_duration_min: Duration::from_secs(3600),
        scan_duration_max: Duration::from_secs(3600),
        ..Config::fast()
    });
    let created = checked(api.post(Some(TEST_KEY), &acme()), 201);
    assert_eq!(created["status"], "processing");
    assert_eq!(created["cached"], false);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("scn_test_01") && id.len() == "scn_test_".len() + 26, "{id}");
    let r = api.get(TEST_KEY, &id);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("0.05"));
    let polled = checked(r, 200);
    assert_eq!(polled["status"], "processing");
    assert!(polled.get("result").is_none() && polled.get("completed_at").is_none());
    assert!(api.sim.finish_now(&id));
    let r = api.get(TEST_KEY, &id);
    assert!(header(&r, "retry-after").is_none(), "no Retry-After once terminal");
    let done = checked(r, 200);
    assert_eq!(done["status"], "completed");
    assert!(done["completed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(done["company"], json!({"name": "Acme AI Ltd", "website": "https://acme.ai"}));
    let ra = &done["result"]["risk_assessment"];
    for dim in [
        "ai_intensity",
        "autonomy",
        "domain_risk",
        "blast_radius",
        "data_content_ip_risk",
        "control_governance",
    ] {
        assert!(
            ra[dim]["score"].is_u64() && ra[dim]["label"].is_string() && ra[dim]["rationale"].is_string(),
            "{dim}"
        );
    }
    assert!(done["result"]["enrichment"]["number_of_users"].is_u64());
    assert!(done["result"]["matched_incidents"].is_array());
}

#[test]
fn failing_websites_end_failed_with_a_scan_level_error() {
    let api = Api::new(Config::fast());
    let id = checked(
        api.post(Some(TEST_KEY), &json!({"company_name": "X", "company_website": "https://x.invalid"})),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(Duration::from_millis(200));
    let failed = checked(api.get(TEST_KEY, &id), 200);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "WEBSITE_UNREACHABLE");
    assert!(failed.get("result").is_none());
}

#[test]
fn cache_rules() {
    let api = Api::new(Config::fast());
    let first = checked(api.post(Some(TEST_KEY), &acme()), 201);
    // Still processing: not a cache hit.
    let mut body = acme();
    body["max_age_days"] = json!(30);
    let second = checked(api.post(Some(TEST_KEY), &body), 201);
    std::thread::sleep(Duration::from_millis(200));
    body["company_website"] = json!("https://ACME.ai/");
    body["company_name"] = json!("Another spelling");
    let hit = checked(api.post(Some(TEST_KEY), &body), 200);
    assert_eq!(hit["cached"], true);
    assert!(hit["cached_at"].is_string());
    assert_eq!(hit["status"], "completed");
    // The hit is one of the two completed scans of this website, not a new one.
    assert!(hit["id"] == first["id"] || hit["id"] == second["id"], "{hit}");
    body["force_refresh"] = json!(true);
    assert_eq!(checked(api.post(Some(TEST_KEY), &body), 201)["cached"], false);
    let mut with_q = acme();
    with_q["max_age_days"] = json!(30);
    with_q["questionnaire"] = json!([{"question": "q", "answer": "a"}]);
    checked(api.post(Some(TEST_KEY), &with_q), 201);
    // The cache is per key: a live key sees none of the test key's scans.
    let mut live = acme();
    live["max_age_days"] = json!(30);
    checked(api.post(Some(LIVE_KEY), &live), 201);
    let stats = api.sim.stats(TEST_KEY);
    assert_eq!((stats.cache_hits, stats.scans_created, stats.credits_used), (1, 4, 0));
    assert_eq!(api.sim.stats(LIVE_KEY).credits_used, 1, "live scans use credits");
}

#[test]
fn validation_codes_and_params() {
    let api = Api::new(Config::fast());
    let cases = [
        (json!({"company_website": "https://a.ai"}), "MISSING_REQUIRED_FIELD", "company_name"),
        (json!({"company_name": "A"}), "MISSING_REQUIRED_FIELD", "company_website"),
        (
            json!({"company_name": "A", "company_website": "http://a.ai"}),
            "INVALID_COMPANY_WEBSITE",
            "company_website",
        ),
        (
            json!({"company_name": "A", "company_website": "https://a.ai", "max_age_days": 366}),
            "INVALID_MAX_AGE_DAYS",
            "max_age_days",
        ),
        (
            json!({"company_name": "A", "company_website": "https://a.ai", "max_age_days": 1.5}),
            "INVALID_MAX_AGE_DAYS",
            "max_age_days",
        ),
        (
            json!({"company_name": "A", "company_website": "https://a.ai", "questionnaire": [{"question": "q", "answer": "x".repeat(5001)}]}),
            "QUESTIONNAIRE_TOO_LARGE",
            "questionnaire",
        ),
    ];
    for (body, code, param) in cases {
        let e = checked(api.post(Some(TEST_KEY), &body), 400);
        assert_eq!(
            (e["error"]["code"].as_str().unwrap(), e["error"]["param"].as_str().unwrap()),
            (code, param),
            "{body}"
        );
    }
    let r = api
        .http
        .post(format!("{}/scans", api.sim.base_url))
        .header("authorization", format!("Bearer {TEST_KEY}"))
        .body("{")
        .send()
        .unwrap();
    checked(r, 400);
}

#[test]
fn authentication_and_scoping() {
    let forbidden = "exo_live_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";
    let api = Api::new(Config { forbidden_keys: vec![forbidden.into()], ..Config::fast() });
    assert_eq!(checked(api.post(None, &acme()), 401)["error"]["code"], "AUTHENTICATION_REQUIRED");
    assert_eq!(checked(api.post(Some("exo_test_short"), &acme()), 401)["error"]["code"], "INVALID_API_KEY");
    assert_eq!(checked(api.post(Some(forbidden), &acme()), 403)["error"]["code"], "FORBIDDEN_IP");
    // Authentication comes before validation.
    assert_eq!(
        checked(api.post(Some("exo_test_short"), &json!({})), 401)["error"]["code"],
        "INVALID_API_KEY"
    );
    let id = checked(api.post(Some(TEST_KEY), &acme()), 201)["id"].as_str().unwrap().to_owned();
    assert_eq!(checked(api.get(LIVE_KEY, &id), 404)["error"]["code"], "SCAN_NOT_FOUND");
    assert_eq!(checked(api.get(TEST_KEY, "scn_test_nope"), 404)["error"]["code"], "SCAN_NOT_FOUND");
}

#[test]
fn rate_limit_window_and_429() {
    let api = Api::new(Config { rate_limit: 3, rate_window: Duration::from_secs(60), ..Config::fast() });
    let r = api.post(Some(TEST_KEY), &acme());
    assert_eq!(header(&r, "x-ratelimit-remaining").as_deref(), Some("2"));
    assert_eq!(header(&r, "x-ratelimit-limit").as_deref(), Some("3"));
    let reset: u64 = header(&r, "x-ratelimit-reset").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(reset >= now + 58 && reset <= now + 61, "{reset} vs {now}");
    api.post(Some(TEST_KEY), &acme());
    api.post(Some(TEST_KEY), &acme());
    let r = api.post(Some(TEST_KEY), &acme());
    let retry: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!((58..=60).contains(&retry), "{retry}");
    assert_eq!(header(&r, "x-ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(checked(r, 429)["error"]["code"], "RATE_LIMIT_EXCEEDED");
    let stats = api.sim.stats(TEST_KEY);
    assert_eq!((stats.posts, stats.rate_limited, stats.scans_created), (3, 1, 3));
    // Another key has its own window.
    checked(api.post(Some(LIVE_KEY), &acme()), 201);
}

#[test]
fn fault_websites() {
    let api = Api::new(Config::fast());
    let site = |s: &str| json!({"company_name": "F", "company_website": s});
    checked(api.post(Some(TEST_KEY), &site("https://post500.acme.ai")), 500);
    assert_eq!(api.sim.scans_created(TEST_KEY), 1, "the scan exists although the POST said 500");
    let id = checked(api.post(Some(TEST_KEY), &site("https://flaky.acme.ai")), 201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    checked(api.get(TEST_KEY, &id), 500);
    checked(api.get(TEST_KEY, &id), 500);
    checked(api.get(TEST_KEY, &id), 200);
    let id = checked(api.post(Some(TEST_KEY), &site("https://vanish.acme.ai")), 201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    checked(api.get(TEST_KEY, &id), 200);
    checked(api.get(TEST_KEY, &id), 404);
    let id = checked(api.post(Some(TEST_KEY), &site("https://garbage.acme.ai")), 201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(serde_json::from_slice::<Value>(&api.get(TEST_KEY, &id).bytes().unwrap()).is_err());
    let id = checked(api.post(Some(TEST_KEY), &site("https://stuck.acme.ai")), 201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(checked(api.get(TEST_KEY, &id), 200)["status"], "processing");
}

#[test]
fn results_are_deterministic_per_website() {
    let a = Api::new(Config { seed: 1, ..Config::fast() });
    let b = Api::new(Config { seed: 2, ..Config::fast() });
    let ida = checked(a.post(Some(TEST_KEY), &acme()), 201)["id"].as_str().unwrap().to_owned();
    let idb = checked(b.post(Some(TEST_KEY), &acme()), 201)["id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(200));
    let ra = checked(a.get(TEST_KEY, &ida), 200)["result"].clone();
    let rb = checked(b.get(TEST_KEY, &idb), 200)["result"].clone();
    assert_eq!(ra, rb);
}
