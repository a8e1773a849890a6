//! TLS to the database with libpq's `sslmode` meanings, on rustls (the library's one TLS stack):
//!
//! - `disable`: plaintext; `allow`: plaintext, TLS if the server refuses it (see `conn.rs`);
//!   `prefer` (libpq's default): TLS when the server offers it, plaintext otherwise, the
//!   certificate not checked; `require`: TLS, the certificate checked against the roots only
//!   when roots are given (as libpq does when `root.crt` exists);
//! - `verify-ca`: TLS, the certificate chained to the roots; `verify-full`: and the host named.
//!
//! Roots: `sslrootcert` (a PEM file, or `system`), else, for the verify modes,
//! `EXONA_CA_BUNDLE` (the library's own setting for a private CA), else
//! `~/.postgresql/root.crt`. A client certificate: `sslcert`
//! and `sslkey`, else `~/.postgresql/postgresql.crt` and `.key` when both exist.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::settings::{Settings, SslMode};

/// What a connection asks of TLS: the driver's mode and the connector.
pub struct Tls {
    pub mode: tokio_postgres::config::SslMode,
    pub connector: tokio_postgres_rustls::MakeRustlsConnect,
    /// Where the roots came from, for an error that says which CA refused the server.
    pub roots_from: Option<String>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The connector for `settings` (the environment read for `EXONA_CA_BUNDLE` and `HOME`).
pub fn for_settings(settings: &Settings) -> Result<Tls, String> {
    use tokio_postgres::config::SslMode as Driver;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    // `require` checks the certificate only against roots given for the database (libpq's
    // root.crt rule); EXONA_CA_BUNDLE, the library's private CA for the API, serves the
    // verify modes only, so that a managed database with a public CA stays reachable under
    // `require` when the API's bundle is private.
    let verify_mode = matches!(settings.ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull);
    let roots_source = settings
        .ssl_root_cert
        .clone()
        .or_else(|| std::env::var(crate::config::ENV_CA_BUNDLE).ok().filter(|v| !v.is_empty() && verify_mode))
        .or_else(|| {
            let default = home.as_ref()?.join(".postgresql/root.crt");
            default.exists().then(|| default.display().to_string())
        });
    let mode = match settings.ssl_mode {
        SslMode::Disable | SslMode::Allow => Driver::Disable,
        SslMode::Prefer => Driver::Prefer,
        _ => Driver::Require,
    };
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match (settings.ssl_mode, &roots_source) {
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(format!(
                "{}: sslmode={} needs the CA that signed the database's certificate: give \
                 sslrootcert=/path/to/ca.pem (or sslrootcert=system for the system's roots, or \
                 EXONA_CA_BUNDLE)",
                settings.shown,
                if settings.ssl_mode == SslMode::VerifyCa { "verify-ca" } else { "verify-full" }
            ))
        }
        (SslMode::VerifyFull, Some(source)) => {
            WebPkiServerVerifier::builder_with_provider(roots(source)?, provider.clone())
                .build()
                .map_err(|e| format!("the roots in {source}: {e}"))?
        }
        (SslMode::VerifyCa | SslMode::Require, Some(source)) => Arc::new(ChainOnly(
            WebPkiServerVerifier::builder_with_provider(roots(source)?, provider.clone())
                .build()
                .map_err(|e| format!("the roots in {source}: {e}"))?,
        )),
        _ => Arc::new(Unchecked(provider.clone())),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let (cert, key) = match (&settings.ssl_cert, &settings.ssl_key) {
        (Some(c), Some(k)) => (Some(c.clone()), Some(k.clone())),
        (Some(c), None) => (Some(c.clone()), Some(c.with_extension("key"))),
        (None, _) => match &home {
            Some(h)
                if h.join(".postgresql/postgresql.crt").exists()
                    && h.join(".postgresql/postgresql.key").exists() =>
            {
                (Some(h.join(".postgresql/postgresql.crt")), Some(h.join(".postgresql/postgresql.key")))
            }
            _ => (None, None),
        },
    };
    let config = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(&cert)?;
            let key = PrivateKeyDer::from_pem_file(&key)
                .map_err(|e| format!("sslkey {}: not a PEM private key ({e})", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("sslcert {} with its key: {e}", cert.display()))?
        }
        _ => builder.with_no_client_auth(),
    };
    let verified = !matches!(settings.ssl_mode, SslMode::Disable | SslMode::Allow | SslMode::Prefer);
    Ok(Tls {
        mode,
        connector: tokio_postgres_rustls::MakeRustlsConnect::new(config),
        roots_from: roots_source.filter(|_| verified),
    })
}

/// The connector `allow` falls back to once the server refused plaintext.
pub fn allow_fallback(settings: &Settings) -> Result<Tls, String> {
    let mut again = settings.clone();
    again.ssl_mode = SslMode::Require;
    for_settings(&again)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not PEM certificates ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

fn roots(source: &str) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    if source == "system" {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = store.add(cert);
        }
    } else {
        for cert in certificates(Path::new(source)).map_err(|e| format!("sslrootcert {e}"))? {
            store.add(cert).map_err(|e| format!("sslrootcert {source}: {e}"))?;
        }
    }
    Ok(Arc::new(store))
}

/// `require` and `prefer` without roots: encrypted, the peer not authenticated (libpq's
/// meaning). The handshake's signatures are still checked, so the key is the certificate's.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` (and `require` with roots): the chain to the roots checked, the host's name
/// not (webpki checks the chain first, so a wrong name is the only error let through).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
