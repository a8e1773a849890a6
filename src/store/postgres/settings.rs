//! A state URL read as libpq reads a connection string (DESIGN.md 9.3), so that what works
//! with `psql` works here: the URL's parts, its libpq parameters (`sslmode`, `sslrootcert`,
//! `sslcert`, `sslkey`, `options`, ...), then the PG* environment variables and the password
//! file for what the URL leaves out. `schema` is ours. Secrets are never shown: [`redact`].

use std::path::{Path, PathBuf};
use std::time::Duration;

/// libpq's `sslmode`, with its meaning (see [`super::tls`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Result<SslMode, String> {
        Ok(match v {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other:?}: use disable, allow, prefer, require, verify-ca or verify-full"
                ))
            }
        })
    }
}

/// Where a connection goes and how it is secured.
#[derive(Clone, Debug)]
pub struct Settings {
    pub host: Host,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub options: Option<String>,
    pub application_name: String,
    pub connect_timeout: Option<Duration>,
    pub ssl_mode: SslMode,
    /// `sslrootcert`: a PEM file of roots, or `system` for the system's.
    pub ssl_root_cert: Option<String>,
    pub ssl_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
    /// The store's schema (`?schema=`, ours; `exona` by default).
    pub schema: String,
    /// The URL as messages show it.
    pub shown: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Tcp(String),
    /// A directory holding the server's Unix socket.
    Socket(PathBuf),
}

impl Host {
    /// The name the password file and certificates are matched against.
    fn pgpass_name(&self) -> &str {
        match self {
            Host::Tcp(h) => h,
            Host::Socket(_) => "localhost",
        }
    }
}

/// The libpq parameters a state URL may carry, besides our `schema`.
const KNOWN: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "connect_timeout",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "passfile",
    "schema",
];

/// The parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &["password", "sslpassword"];

/// A URL as it may be shown: the password in its user part and every secret parameter
/// (`password=`) replaced by `***`; everything else as the user wrote it.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut shown = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
                    None => base.to_owned(),
                },
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let parts: Vec<String> = query
            .split('&')
            .map(|pair| {
                let key = pair.split('=').next().unwrap_or("");
                let decoded = percent_decode(key);
                if SECRET_PARAMS.contains(&decoded.as_str()) {
                    format!("{key}=***")
                } else {
                    pair.to_owned()
                }
            })
            .collect();
        shown.push('?');
        shown.push_str(&parts.join("&"));
    }
    shown
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("k={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Where the environment and the file system are read from: the real ones, or a test's.
pub struct Env<'a> {
    pub var: &'a dyn Fn(&str) -> Option<String>,
    pub home: Option<PathBuf>,
}

impl Env<'_> {
    pub fn process() -> Env<'static> {
        Env {
            var: &|name| std::env::var(name).ok().filter(|v| !v.is_empty()),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// Reads `url` as libpq would, filling what it leaves out from `env`.
pub fn parse(url: &str, env: &Env<'_>) -> Result<Settings, String> {
    let shown = redact(url);
    let u = url::Url::parse(url).map_err(|e| format!("{shown} is not a URL ({e})"))?;
    if !matches!(u.scheme(), "postgres" | "postgresql") {
        return Err(format!("{shown} is not a postgresql:// URL"));
    }
    let mut params: Vec<(String, String)> = Vec::new();
    // Percent-decoded as libpq decodes a URI: a `+` is a plus, not a space.
    let pairs = u.query().unwrap_or("").split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    });
    for (k, v) in pairs {
        if !KNOWN.contains(&k.as_str()) {
            return Err(format!(
                "{shown}: unknown parameter {k:?} (libpq's: {}; ours: schema)",
                KNOWN.iter().filter(|k| **k != "schema").copied().collect::<Vec<_>>().join(", ")
            ));
        }
        params.push((k, v));
    }
    let param = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let env_var = |name: &str| (env.var)(name);
    let decode = |s: &str| percent_decode(s);

    let host_text = param("host")
        .or_else(|| u.host_str().filter(|h| !h.is_empty()).map(|h| h.trim_matches(['[', ']']).to_owned()))
        .or_else(|| env_var("PGHOST"));
    let host = match host_text {
        Some(h) if h.starts_with('/') => Host::Socket(PathBuf::from(h)),
        Some(h) => Host::Tcp(h),
        None => Host::Socket(PathBuf::from("/var/run/postgresql")),
    };
    let port_text = param("port").or_else(|| u.port().map(|p| p.to_string())).or_else(|| env_var("PGPORT"));
    let port = match port_text {
        Some(p) => p.parse::<u16>().map_err(|_| format!("{shown}: port {p:?} is not a port number"))?,
        None => 5432,
    };
    let user = param("user")
        .or_else(|| Some(decode(u.username())).filter(|s| !s.is_empty()))
        .or_else(|| env_var("PGUSER"))
        .or_else(os_user)
        .ok_or_else(|| format!("{shown}: no user (give one in the URL or PGUSER)"))?;
    let dbname = param("dbname")
        .or_else(|| Some(decode(u.path().trim_start_matches('/'))).filter(|s| !s.is_empty()))
        .or_else(|| env_var("PGDATABASE"))
        .unwrap_or_else(|| user.clone());
    let ssl_mode = match param("sslmode").or_else(|| env_var("PGSSLMODE")) {
        Some(m) => SslMode::parse(&m).map_err(|e| format!("{shown}: {e}"))?,
        None => SslMode::Prefer,
    };
    let ssl_root_cert = param("sslrootcert").or_else(|| env_var("PGSSLROOTCERT"));
    let ssl_cert = param("sslcert").or_else(|| env_var("PGSSLCERT")).map(PathBuf::from);
    let ssl_key = param("sslkey").or_else(|| env_var("PGSSLKEY")).map(PathBuf::from);
    let connect_timeout = match param("connect_timeout").or_else(|| env_var("PGCONNECT_TIMEOUT")) {
        Some(t) => {
            let secs = t
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("{shown}: connect_timeout {t:?} is not seconds"))?;
            // libpq: 0 means wait for ever, and anything under 2 s counts as 2.
            (secs > 0).then(|| Duration::from_secs(secs.max(2)))
        }
        None => None,
    };
    let schema = param("schema").unwrap_or_else(|| "exona".to_owned());
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(format!("schema={schema:?} in the state URL: use lower-case letters, digits and _"));
    }
    let mut password =
        param("password").or_else(|| u.password().map(decode)).or_else(|| env_var("PGPASSWORD"));
    if password.is_none() {
        let file = param("passfile")
            .map(PathBuf::from)
            .or_else(|| env_var("PGPASSFILE").map(PathBuf::from))
            .or_else(|| env.home.as_ref().map(|h| h.join(".pgpass")));
        if let Some(file) = file {
            password = pgpass_lookup(&file, host.pgpass_name(), port, &dbname, &user);
        }
    }
    Ok(Settings {
        host,
        port,
        user,
        password,
        dbname,
        options: param("options").or_else(|| env_var("PGOPTIONS")),
        application_name: param("application_name")
            .or_else(|| env_var("PGAPPNAME"))
            .unwrap_or_else(|| "libexona".to_owned()),
        connect_timeout,
        ssl_mode,
        ssl_root_cert,
        ssl_cert,
        ssl_key,
        schema,
        shown,
    })
}

fn os_user() -> Option<String> {
    // SAFETY: getpwuid_r with a buffer of our own; the name is copied out before it goes.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(libc::geteuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out);
        if rc != 0 || out.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned())
    }
}

/// The password file's answer for this connection, as libpq reads it: lines of
/// `host:port:database:user:password`, `*` matching anything, `\:` and `\\` escaped, the
/// first match wins; a file others may read is ignored (as libpq does, with its warning).
fn pgpass_lookup(file: &Path, host: &str, port: u16, dbname: &str, user: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        crate::log::log(crate::log::Level::Warn, || {
            format!("password file {} is readable by others: ignored (chmod 0600 it)", file.display())
        });
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            return None;
        }
        let matches = fields[..4].iter().zip(wanted).all(|(f, w)| f == "*" || f == w);
        matches.then(|| fields[4].clone())
    })
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("one field at least").push(next);
                }
            }
            // The password is the rest of the line, colons and all.
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field at least").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    fn parse_with(
        url: &str,
        vars: &'static [(&'static str, &'static str)],
        home: Option<PathBuf>,
    ) -> Settings {
        let var = env_of(vars);
        parse(url, &Env { var: &var, home }).unwrap()
    }

    #[test]
    fn every_secret_is_redacted_and_the_rest_shown_as_written() {
        let shown = redact("postgresql://exona:s3cret-pw@db.example:5432/fleet?sslmode=require&password=other-pw&options=-c%20x%3Dy");
        assert!(!shown.contains("s3cret-pw") && !shown.contains("other-pw"), "{shown}");
        assert_eq!(
            shown,
            "postgresql://exona:***@db.example:5432/fleet?sslmode=require&password=***&options=-c%20x%3Dy"
        );
        assert_eq!(redact("postgresql://db/x?pass%77ord=pw"), "postgresql://db/x?pass%77ord=***");
    }

    #[test]
    fn the_url_then_the_environment_then_libpqs_defaults() {
        let s = parse_with(
            "postgresql://u:pw@h:6000/db?sslmode=verify-full&sslrootcert=/ca.pem&options=-c%20a%3Db&schema=fleet_a",
            &[("PGHOST", "other"), ("PGUSER", "other")],
            None,
        );
        assert_eq!(
            (s.host, s.port, s.user.as_str(), s.dbname.as_str()),
            (Host::Tcp("h".into()), 6000, "u", "db")
        );
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.ssl_mode, SslMode::VerifyFull);
        assert_eq!(s.ssl_root_cert.as_deref(), Some("/ca.pem"));
        assert_eq!(s.options.as_deref(), Some("-c a=b"), "the user's options are kept, spaces as spaces");
        assert_eq!(s.schema, "fleet_a");
        let s = parse_with("postgresql://u@h/db?password=a+b%2Bc", &[], None);
        assert_eq!(s.password.as_deref(), Some("a+b+c"), "a plus is a plus, as libpq reads it");
        let s = parse_with(
            "postgresql:///",
            &[
                ("PGHOST", "envhost"),
                ("PGPORT", "5433"),
                ("PGUSER", "envuser"),
                ("PGSSLMODE", "require"),
                ("PGPASSWORD", "envpw"),
            ],
            None,
        );
        assert_eq!(
            (s.host, s.port, s.user.as_str(), s.dbname.as_str()),
            (Host::Tcp("envhost".into()), 5433, "envuser", "envuser")
        );
        assert_eq!((s.ssl_mode, s.password.as_deref()), (SslMode::Require, Some("envpw")));
        let s = parse_with("postgresql:///db?user=u", &[], None);
        assert_eq!(s.host, Host::Socket("/var/run/postgresql".into()));
        assert_eq!(s.ssl_mode, SslMode::Prefer, "libpq's default");
    }

    #[test]
    fn the_password_file_fills_a_missing_password() {
        let dir = std::env::temp_dir().join(format!("exona-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(".pgpass");
        std::fs::write(&file, "# comment\nother:*:*:*:no\nh:6000:db:u:pa\\:ss:word\n*:*:*:*:fallback\n")
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = parse_with("postgresql://u@h:6000/db", &[], Some(dir.clone()));
        assert_eq!(s.password.as_deref(), Some("pa:ss:word"));
        let s = parse_with("postgresql://u@h:7000/db", &[], Some(dir.clone()));
        assert_eq!(s.password.as_deref(), Some("fallback"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let s = parse_with("postgresql://u@h:6000/db", &[], Some(dir.clone()));
        assert_eq!(s.password, None, "a file others can read is ignored, as libpq does");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_wrong_parameter_is_named_never_the_password() {
        let var = env_of(&[]);
        let env = Env { var: &var, home: None };
        let e = parse("postgresql://u:s3cret@h/db?sslmode=verify", &env).unwrap_err();
        assert!(e.contains("sslmode=\"verify\"") && !e.contains("s3cret"), "{e}");
        let e = parse("postgresql://u:s3cret@h/db?sslrotcert=x", &env).unwrap_err();
        assert!(e.contains("sslrotcert") && !e.contains("s3cret"), "{e}");
        let e = parse("mysql://u:s3cret@h/db", &env).unwrap_err();
        assert!(e.contains("postgresql://") && !e.contains("s3cret"), "{e}");
        let e = parse("postgresql://u:s3cret@h/db?schema=Bad-Name", &env).unwrap_err();
        assert!(e.contains("schema") && !e.contains("s3cret"), "{e}");
    }
}
