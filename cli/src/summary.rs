//! A scan as a person reads it: the overall level, the six dimensions with score, label and
//! a one-line rationale.

use exona::{Scan, ScanStatus};

pub const DIMENSIONS: [&str; 6] =
    ["ai_intensity", "autonomy", "domain_risk", "blast_radius", "data_content_ip_risk", "control_governance"];

/// The first sentence of `text`, cut to `width` characters.
fn one_line(text: &str, width: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let sentence = match flat.find(". ") {
        Some(i) => &flat[..=i],
        None => flat.as_str(),
    };
    if sentence.chars().count() <= width {
        sentence.to_owned()
    } else {
        let cut: String = sentence.chars().take(width.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    }
}

pub fn render(scan: &Scan) -> String {
    let s = |p: &str| scan.get_str(p).unwrap_or("-").to_owned();
    let mut out = format!("{} ({})\n", s("/company/name"), s("/company/website"));
    let provenance = if scan.from_store {
        ", from the local state store (no request)"
    } else if scan.cached() {
        ", a cached scan"
    } else {
        ""
    };
    out += &format!("scan {}: {}{provenance}\n", scan.id(), s("/status"));
    match scan.status() {
        ScanStatus::Completed => {
            let ra = "/result/risk_assessment";
            out += &format!("\noverall risk: {}\n\n", s(&format!("{ra}/overall_risk_level")));
            for d in DIMENSIONS {
                let score = scan.json().pointer(&format!("{ra}/{d}/score")).and_then(|v| v.as_i64());
                let label = s(&format!("{ra}/{d}/label"));
                let rationale = scan.get_str(&format!("{ra}/{d}/rationale")).map(|r| one_line(r, 90));
                out += &format!(
                    "  {d:<22} {:>2}  {label}\n",
                    score.map_or_else(|| "-".to_owned(), |v| v.to_string())
                );
                if let Some(r) = rationale {
                    out += &format!("  {:<22}     {r}\n", "");
                }
            }
            if let Some(reg) = scan.get_str(&format!("{ra}/regulatory_exposure")) {
                out += &format!("\nregulatory exposure: {}\n", one_line(reg, 100));
            }
        }
        ScanStatus::Failed => {
            out += &format!("failed: {} ({})\n", s("/error/message"), s("/error/code"));
        }
        _ => out += "still processing: `exona wait` resumes it by id\n",
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rationale_is_cut_to_one_line() {
        assert_eq!(one_line("Uses  AI\nfor pricing. Also more.", 90), "Uses AI for pricing.");
        let long = "word ".repeat(40);
        let cut = one_line(&long, 20);
        assert!(cut.ends_with('…') && cut.chars().count() <= 20, "{cut}");
    }
}
