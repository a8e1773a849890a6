//! Fault injection by magic website: the first label of the host (or its ending) picks the
//! fault, so any client can trigger one with an ordinary request. Listed in the README.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// `*.invalid`: the scan ends `failed` with WEBSITE_UNREACHABLE.
    Unreachable,
    /// `thin.*`: the scan ends `failed` with INSUFFICIENT_PUBLIC_DATA.
    InsufficientData,
    /// `stuck.*`: the scan never leaves `processing`.
    Stuck,
    /// `flaky.*`: the first two GETs of the scan answer 500.
    Flaky,
    /// `post500.*`: POST creates the scan, then answers 500 (the ambiguous create).
    Post500,
    /// `vanish.*`: the scan stays processing, and answers 404 from its second GET on.
    Vanish,
    /// `garbage.*`: GET answers 200 with a body that is not JSON.
    Garbage,
    /// `slow.*`: every GET waits `slow_response` before answering.
    Slow,
}

pub fn fault_for(website: &str) -> Fault {
    let host = url::Url::parse(website).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    let Some(host) = host else { return Fault::None };
    if host.ends_with(".invalid") {
        return Fault::Unreachable;
    }
    match host.split('.').next().unwrap_or("") {
        "thin" => Fault::InsufficientData,
        "stuck" => Fault::Stuck,
        "flaky" => Fault::Flaky,
        "post500" => Fault::Post500,
        "vanish" => Fault::Vanish,
        "garbage" => Fault::Garbage,
        "slow" => Fault::Slow,
        _ => Fault::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_hosts() {
        assert_eq!(fault_for("https://acme.ai"), Fault::None);
        assert_eq!(fault_for("https://down.invalid"), Fault::Unreachable);
        assert_eq!(fault_for("https://STUCK.acme.ai/x"), Fault::Stuck);
        assert_eq!(fault_for("https://flaky.acme.ai"), Fault::Flaky);
        assert_eq!(fault_for("not a url"), Fault::None);
    }
}
