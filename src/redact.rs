//! Scrubbing the API key out of text that came from the network.
//!
//! A server (or a proxy in front of it) may echo the request's `Authorization` header in an
//! error message: "you sent Bearer exo_test_…". Whatever a response carries reaches results,
//! log lines and the caller's own logs, so every string taken from a response goes through
//! [`Redactor::scrub`] first: the key, any run of [`MIN_RUN`] or more of its characters (a
//! server that cuts the key short still leaks most of it), and whatever token follows
//! `Bearer ` are replaced by [`MASK`].

use std::collections::HashSet;

use zeroize::Zeroizing;

/// What stands in place of a scrubbed secret. Plain ASCII without quotes or backslashes, so a
/// scrubbed JSON document stays valid JSON.
pub const MASK: &str = "[redacted]";

/// The shortest run of the key's characters that counts as a leak. Shorter runs occur in
/// ordinary text ("exo_test_" itself is public: the documented key prefix is 9 characters).
pub const MIN_RUN: usize = 12;

/// Knows one key and removes it from text.
pub struct Redactor {
    key: Zeroizing<Vec<u8>>,
}

impl Redactor {
    pub fn new(api_key: &str) -> Redactor {
        Redactor { key: Zeroizing::new(api_key.as_bytes().to_vec()) }
    }

    /// A copy of the text with every trace of the key replaced by [`MASK`].
    pub fn scrub_bytes(&self, text: &[u8]) -> Vec<u8> {
        let mut masked = vec![false; text.len()];
        let mut any = self.mark_key_runs(text, &mut masked);
        any |= mark_bearer_tokens(text, &mut masked);
        if !any {
            return text.to_vec();
        }
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            if masked[i] {
                out.extend_from_slice(MASK.as_bytes());
                while i < text.len() && masked[i] {
                    i += 1;
                }
            } else {
                out.push(text[i]);
                i += 1;
            }
        }
        out
    }

    /// [`Redactor::scrub_bytes`] for a string.
    pub fn scrub(&self, text: &str) -> String {
        // Masks replace whole runs of ASCII key characters or ASCII tokens, so UTF-8 stays valid;
        // the lossy conversion only guards against a key with non-ASCII bytes.
        String::from_utf8_lossy(&self.scrub_bytes(text.as_bytes())).into_owned()
    }

    /// Marks every window of [`MIN_RUN`] bytes that also occurs in the key.
    fn mark_key_runs(&self, text: &[u8], masked: &mut [bool]) -> bool {
        let key = &self.key[..];
        if key.is_empty() || text.is_empty() {
            return false;
        }
        let run = MIN_RUN.min(key.len());
        if text.len() < run {
            return false;
        }
        let windows: HashSet<&[u8]> = key.windows(run).collect();
        let first: HashSet<u8> = windows.iter().map(|w| w[0]).collect();
        let mut any = false;
        for start in 0..=text.len() - run {
            if first.contains(&text[start]) && windows.contains(&text[start..start + run]) {
                masked[start..start + run].iter_mut().for_each(|m| *m = true);
                any = true;
            }
        }
        any
    }
}

/// Marks the token after every `Bearer ` (case-insensitive), up to whitespace or a quote.
fn mark_bearer_tokens(text: &[u8], masked: &mut [bool]) -> bool {
    const WORD: &[u8] = b"bearer ";
    let mut any = false;
    let mut i = 0;
    while i + WORD.len() <= text.len() {
        if text[i..i + WORD.len()].eq_ignore_ascii_case(WORD) {
            let start = i + WORD.len();
            let mut end = start;
            while end < text.len() && !is_token_end(text[end]) {
                end += 1;
            }
            if end > start {
                masked[start..end].iter_mut().for_each(|m| *m = true);
                any = true;
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    any
}

fn is_token_end(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'\\' | b',' | b';' | b'<' | b'>')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "exo_test_abcdefghijklmnopqrstuvwxyz0123456789";

    #[test]
    fn the_whole_key_and_bearer_forms_are_masked() {
        let r = Redactor::new(KEY);
        assert_eq!(r.scrub(&format!("you sent Bearer {KEY} today")), "you sent Bearer [redacted] today");
        assert_eq!(r.scrub(&format!("key={KEY}")), "key=[redacted]");
        assert_eq!(r.scrub("authorization: bearer sometoken here"), "authorization: bearer [redacted] here");
    }

    #[test]
    fn a_cut_key_is_masked_too() {
        let r = Redactor::new(KEY);
        let cut = &KEY[..20];
        let out = r.scrub(&format!("key {cut}… was refused"));
        assert!(!out.contains(&KEY[9..21]), "{out}");
        assert_eq!(out, "key [redacted]… was refused");
        // A short shared prefix is ordinary text.
        assert_eq!(r.scrub("exo_test_ keys are for the sandbox"), "exo_test_ keys are for the sandbox");
    }

    #[test]
    fn json_stays_json() {
        let r = Redactor::new(KEY);
        let body = format!(r#"{{"error":{{"message":"Bearer {KEY} is wrong","hint":"{KEY}"}}}}"#);
        let scrubbed = r.scrub(&body);
        let v: serde_json::Value = serde_json::from_str(&scrubbed).unwrap();
        assert_eq!(v["error"]["hint"], "[redacted]");
        assert_eq!(v["error"]["message"], "Bearer [redacted] is wrong");
    }

    #[test]
    fn clean_text_is_unchanged() {
        let r = Redactor::new(KEY);
        let text = "scan scn_01jrq7m2d3e4f5g6h7j8k9l0mn completed (request id req_01hx7m2d3e4f5g6)";
        assert_eq!(r.scrub(text), text);
    }
}
