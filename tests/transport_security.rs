//! TLS verification against exona-sim serving HTTPS with a certificate made here (refused
//! without the CA, accepted with it), and no request, so no key, follows a redirect.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{fast_policy, key};
use exona::{Client, Code, ConnectOptions, ScanRequest, WaitOptions};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A throwaway CA and a server certificate it signed for 127.0.0.1: (CA PEM, cert PEM, key PEM).
fn pki() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "libexona test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "exona-sim");
    let cert = params.signed_by(&server_key, &ca).unwrap();
    (ca.pem(), cert.pem(), server_key.serialize_pem())
}

fn tls_sim(cert: &str, key_pem: &str) -> exona_sim::SimHandle {
    exona_sim::spawn(exona_sim::Config {
        tls: Some((cert.as_bytes().to_vec(), key_pem.as_bytes().to_vec())),
        ..exona_sim::Config::fast()
    })
    .unwrap()
}

fn options() -> WaitOptions {
    WaitOptions { deadline: Some(Duration::from_secs(10)), ..WaitOptions::default() }
}

#[test]
fn tls_is_verified_and_an_extra_ca_is_honoured() {
    let (ca, cert, server_key) = pki();
    let sim = tls_sim(&cert, &server_key);
    assert!(sim.base_url.starts_with("https://127.0.0.1:"));
    let k = key(700);
    let request = ScanRequest::new("Acme", "https://acme.ai");

    let untrusting = Client::with_policy(&k, Some(&sim.base_url), fast_policy()).unwrap();
    let e = untrusting.scan_and_wait(&request, &options()).unwrap_err();
    assert_eq!(e.code, Code::Network, "{e}");
    assert!(e.message.contains("no scan was created"), "{}", e.message);
    assert_eq!(sim.stats(&k).posts, 0, "nothing reached the server over an unverified connection");

    let connect = ConnectOptions { extra_ca_pem: Some(ca.into_bytes()), ..ConnectOptions::default() };
    let trusting = Client::with_options(&k, Some(&sim.base_url), fast_policy(), connect).unwrap();
    let scan = trusting.scan_and_wait(&request, &options()).unwrap();
    assert_eq!(scan.get_str("/status"), Some("completed"));
}

#[test]
fn a_bundle_that_is_not_pem_is_refused() {
    let connect =
        ConnectOptions { extra_ca_pem: Some(b"not a certificate".to_vec()), ..ConnectOptions::default() };
    let e = Client::with_options(&key(701), Some("https://127.0.0.1:9/api/v1"), fast_policy(), connect)
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.contains("CA bundle"), "{}", e.message);
}

#[test]
fn the_c_surface_reads_the_ca_bundle_from_exona_ca_bundle() {
    let (ca, cert, server_key) = pki();
    let sim = tls_sim(&cert, &server_key);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let bundle = dir.join("tls-test-ca.pem");
    std::fs::write(&bundle, ca).unwrap();
    // Build scan.c like the C example tests do, and run it with and without the bundle.
    let lib = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let exe = dir.join("c-scan-tls");
    let root = env!("CARGO_MANIFEST_DIR");
    let ok = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg(format!("-I{root}/include"))
        .arg(format!("{root}/examples/c/scan.c"))
        .arg(format!("-L{}", lib.display()))
        .arg("-lexona")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-Wl,--disable-new-dtags")
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let run = |bundle: Option<&std::path::Path>| {
        let mut c = Command::new(&exe);
        c.args(["Acme AI Ltd", "https://acme.ai"])
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("EXONA_CA_BUNDLE")
            .env("EXONA_API_KEY", key(702))
            .env("EXONA_BASE_URL", &sim.base_url)
            .env("EXONA_SCAN_DURATION_MS", "50-150");
        if let Some(b) = bundle {
            c.env("EXONA_CA_BUNDLE", b);
        }
        c.output().unwrap()
    };
    let refused = run(None);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("EXONA_ERR_NETWORK"));
    let accepted = run(Some(&bundle));
    assert_eq!(accepted.status.code(), Some(0), "{}", String::from_utf8_lossy(&accepted.stderr));
}

#[test]
fn redirects_are_not_followed_so_the_key_goes_nowhere_else() {
    // The other host counts whatever reaches it.
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_addr = other.local_addr().unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    other.set_nonblocking(true).unwrap();
    let watcher = std::thread::spawn(move || {
        for _ in 0..100 {
            if other.accept().is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    // The API host answers every request with a redirect to the other host.
    let api = TcpListener::bind("127.0.0.1:0").unwrap();
    let api_url = format!("http://{}/api/v1", api.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in api.incoming().take(2) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{other_addr}/api/v1/scans/x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    let client = Client::with_policy(&key(703), Some(&api_url), fast_policy()).unwrap();
    let e = client.get_scan("scn_test_x").unwrap_err();
    assert_eq!((e.code, e.http_status), (Code::Protocol, Some(302)));
    watcher.join().unwrap();
    assert_eq!(reached.load(Ordering::SeqCst), 0, "a request followed the redirect");
}
