//! Fault injection by magic website: the first label of the host (or its ending) picks the
//! fault, so any client can trigger one with an ordinary request. Listed in the README.
//! Connection-level faults drop the connection by unwinding the handler's task (hyper then
//! closes the socket without a response); the panic hook installed here keeps them quiet.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// `*.invalid`: the scan ends `failed` with WEBSITE_UNREACHABLE.
    Unreachable,
    /// `thin.*`: the scan ends `failed` with INSUFFICIENT_PUBLIC_DATA.
    InsufficientData,
    /// `stuck.*`: the scan never leaves `processing`.
    Stuck,
    /// `flaky.*`: the scan's first two GETs answer 500.
    Flaky,
    /// `burst500.*`: the scan's first four GETs answer 500.
    Burst500,
    /// `down500.*`: every GET of the scan answers 500.
    Down500,
    /// `post500.*`: POST creates the scan, then answers 500 (an ambiguous create).
    Post500,
    /// `droppost.*`: POST drops the connection before creating anything.
    DropPost,
    /// `lostpost.*`: POST creates the scan, then drops the connection without an answer.
    LostPost,
    /// `heldpost.*`: POST creates the scan, then holds its answer `slow_response` (a create
    /// on the wire, its answer late: what a client paused meanwhile finds in its socket).
    HeldPost,
    /// `drop.*`: the scan's first two GETs drop the connection without an answer.
    DropGet,
    /// `halfbody.*`: the scan's first two GETs send half the body, then drop the connection.
    HalfBody,
    /// `vanish.*`: the scan stays processing, and answers 404 from its second GET on.
    Vanish,
    /// `garbage.*`: GET answers 200 with a body that is not JSON.
    Garbage,
    /// `truncated.*`: GET answers 200 with JSON cut off in the middle.
    Truncated,
    /// `huge.*`: GET answers 200 with a 17 MiB body.
    Huge,
    /// `wrongtype.*`: GET answers with `Content-Type: text/html` (the body is the usual JSON).
    WrongType,
    /// `slow.*`: every GET is held `slow_response` before its answer.
    Slow,
    /// `storm.*`: the scan's first three GETs answer 429 with a garbage `Retry-After`.
    Storm,
    /// `stormdate.*`: the scan's first two GETs answer 429 with an HTTP-date `Retry-After`.
    StormDate,
    /// `stormlong.*`: every GET of the scan answers 429 with `Retry-After: 7200`.
    StormLong,
    /// `skew.*`: the scan's responses carry a `Date` three hours ahead, and an HTTP-date
    /// `Retry-After` on that clock.
    Skew,
    /// `echokey.*`: POST answers 400 and echoes the request's `Authorization` header in the
    /// message, hint, param and `X-Request-ID` (a hostile or careless server).
    EchoKey,
    /// `otherid.*`: GET answers with a scan object whose `id` is another scan's.
    OtherId,
    /// `noresult.*`: the scan completes, but its object has no `result`.
    NoResult,
    /// `busy503.*`: every GET of the scan answers 503 with `Retry-After: 3600`.
    Busy503,
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
        "burst500" => Fault::Burst500,
        "down500" => Fault::Down500,
        "post500" => Fault::Post500,
        "droppost" => Fault::DropPost,
        "lostpost" => Fault::LostPost,
        "heldpost" => Fault::HeldPost,
        "drop" => Fault::DropGet,
        "halfbody" => Fault::HalfBody,
        "vanish" => Fault::Vanish,
        "garbage" => Fault::Garbage,
        "truncated" => Fault::Truncated,
        "huge" => Fault::Huge,
        "wrongtype" => Fault::WrongType,
        "slow" => Fault::Slow,
        "storm" => Fault::Storm,
        "stormdate" => Fault::StormDate,
        "stormlong" => Fault::StormLong,
        "skew" => Fault::Skew,
        "echokey" => Fault::EchoKey,
        "otherid" => Fault::OtherId,
        "noresult" => Fault::NoResult,
        "busy503" => Fault::Busy503,
        _ => Fault::None,
    }
}

/// The panic payload that means "drop this connection", not a bug.
pub const DROP_CONNECTION: &str = "exona-sim: dropping the connection (fault injection)";

/// Drops the current connection without an answer.
pub fn drop_connection() -> ! {
    std::panic::panic_any(DROP_CONNECTION)
}

/// Keeps injected connection drops out of stderr; every other panic is reported as before.
pub fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&DROP_CONNECTION) {
                previous(info);
            }
        }));
    });
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
        assert_eq!(fault_for("https://stormlong.acme.ai"), Fault::StormLong);
        assert_eq!(fault_for("not a url"), Fault::None);
    }
}
