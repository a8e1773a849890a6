//! Learning from every completion on the key, not from this process's alone (DESIGN.md 9.4):
//! processes sharing a state store hand each other the durations they learn, so that the first
//! completions of any of them move every one's schedule within the window they happen in.
//! Three processes with the 30-120 s prior and 3-12 s scans each learned from their own
//! completions only; two kept polls planned at ~110 s for scans long done (issue 35).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::ledger::Ledger;

/// Scan ids remembered as learned (here or from the others): a scan that two processes both
/// saw end (one joined the other's) counts once in each model.
const REMEMBERED: usize = 4096;

#[derive(Default)]
pub struct SharedLearning {
    recent: VecDeque<String>,
    known: HashSet<String>,
}

impl SharedLearning {
    /// This process learned that `scan_id` took `duration`: the others are told.
    pub fn learned_here(&mut self, scan_id: &str, duration: Duration, ledger: Option<&Arc<dyn Ledger>>) {
        if self.remember(scan_id) {
            if let Some(ledger) = ledger {
                ledger.publish_learned(scan_id, duration);
            }
        }
    }

    /// What the other processes learned since the last call, each scan once.
    pub fn learned_by_the_others(&mut self, ledger: Option<&Arc<dyn Ledger>>) -> Vec<Duration> {
        let Some(ledger) = ledger else { return Vec::new() };
        ledger.take_learned().into_iter().filter(|(id, _)| self.remember(id)).map(|(_, d)| d).collect()
    }

    /// Whether `scan_id` is new (then remembered).
    fn remember(&mut self, scan_id: &str) -> bool {
        if self.known.contains(scan_id) {
            return false;
        }
        if self.recent.len() == REMEMBERED {
            if let Some(old) = self.recent.pop_front() {
                self.known.remove(&old);
            }
        }
        self.recent.push_back(scan_id.to_owned());
        self.known.insert(scan_id.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ledger::MemoryLedger;

    #[test]
    fn each_process_learns_the_others_completions_once() {
        let memory = MemoryLedger::default();
        let (a, b): (Arc<dyn Ledger>, Arc<dyn Ledger>) =
            (Arc::new(memory.holder(0)), Arc::new(memory.holder(1)));
        let (mut la, mut lb) = (SharedLearning::default(), SharedLearning::default());
        la.learned_here("scn_1", Duration::from_secs(5), Some(&a));
        la.learned_here("scn_1", Duration::from_secs(5), Some(&a));
        assert!(la.learned_by_the_others(Some(&a)).is_empty(), "its own are not handed back");
        assert_eq!(lb.learned_by_the_others(Some(&b)), vec![Duration::from_secs(5)]);
        assert!(lb.learned_by_the_others(Some(&b)).is_empty(), "handed once");
        // A scan both saw end (b joined a's) counts once in b's model.
        lb.learned_here("scn_2", Duration::from_secs(7), Some(&b));
        la.learned_here("scn_2", Duration::from_secs(7), Some(&a));
        assert_eq!(la.learned_by_the_others(Some(&a)), Vec::<Duration>::new());
        assert!(lb.learned_by_the_others(Some(&b)).is_empty());
    }
}
