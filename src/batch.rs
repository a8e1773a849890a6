//! Many scans at once: add requests, collect results as they finish (in finishing order),
//! cancel one or all, count what is queued, in flight and done.
//!
//! Every request goes through the client's engine like any other call: the key's governor
//! admits a create only when its polls can be afforded, so a batch of thousands never outruns
//! the budget; the scheduler thread drives them all. Every added request ends with exactly one
//! result, carrying its index (order of addition) and its scan id whenever a scan exists.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::client::{Client, WaitOptions};
use crate::engine::cancel::CancelToken;
use crate::engine::core::{Progress, Sink};
use crate::engine::task::{Goal, Outcome};
use crate::error::Error;
use crate::model::ScanRequest;

/// Where an added request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Not created yet (waiting for the budget, or its create in flight).
    Queued,
    /// Created: the engine waits for it.
    InFlight,
    /// Ended: its result is ready or was collected.
    Done,
}

/// How many requests are at each stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub queued: usize,
    pub in_flight: usize,
    pub done: usize,
}

#[derive(Default)]
struct State {
    stages: Vec<Stage>,
    cancels: Vec<CancelToken>,
    ready: VecDeque<(usize, Outcome)>,
    collected: usize,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One added request's sink: tells the batch its stage and its end.
struct Item {
    index: usize,
    shared: Arc<Shared>,
}

impl Sink for Item {
    fn progress(&self, event: Progress) {
        if event.scan_id.is_some() {
            let mut st = self.shared.lock();
            if st.stages[self.index] == Stage::Queued {
                st.stages[self.index] = Stage::InFlight;
            }
        }
    }

    fn finish(&self, outcome: Outcome) {
        let mut st = self.shared.lock();
        st.stages[self.index] = Stage::Done;
        st.ready.push_back((self.index, outcome));
        self.shared.ready.notify_all();
    }
}

/// A set of scans running on one client.
pub struct Batch {
    client: Client,
    shared: Arc<Shared>,
}

/// What `next` found.
#[derive(Debug)]
pub enum Next {
    /// A finished request: its index and outcome.
    Ready(usize, Outcome),
    /// Nothing finished within the timeout; some are still running.
    Pending,
    /// Every added request's result has been collected.
    Empty,
}

impl Batch {
    pub fn new(client: &Client) -> Batch {
        Batch { client: client.clone(), shared: Arc::default() }
    }

    /// Adds a scan request (create, then wait) and returns its index. Invalid input is not an
    /// error here: it becomes that index's result, like every other outcome.
    pub fn add(&self, request: ScanRequest, options: &WaitOptions) -> usize {
        let cancel = options.cancel.clone().unwrap_or_default();
        let index = {
            let mut st = self.shared.lock();
            st.stages.push(Stage::Queued);
            st.cancels.push(cancel.clone());
            st.stages.len() - 1
        };
        let item = Arc::new(Item { index, shared: Arc::clone(&self.shared) });
        let options = WaitOptions { cancel: Some(cancel), ..options.clone() };
        let goal = Goal::Create { request, create_only: false };
        if let Err(e) = self.client.submit(goal, &options, item.clone()) {
            item.finish(Err(e));
        }
        index
    }

    /// Waits up to `limit` (`None`: without limit) for the next finished request, in
    /// finishing order.
    pub fn next(&self, limit: Option<Duration>) -> Next {
        let deadline = limit.and_then(|l| Instant::now().checked_add(l));
        let mut st = self.shared.lock();
        loop {
            if let Some((index, outcome)) = st.ready.pop_front() {
                st.collected += 1;
                return Next::Ready(index, outcome);
            }
            if st.collected == st.stages.len() {
                return Next::Empty;
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Next::Pending;
            }
            st = self.shared.ready.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Cancels one request (its result becomes `Cancelled`, with its scan id if it has one).
    pub fn cancel(&self, index: usize) -> Result<(), Error> {
        let token = self.shared.lock().cancels.get(index).cloned();
        match token {
            Some(t) => {
                t.cancel();
                self.client.wake();
                Ok(())
            }
            None => Err(Error::invalid_argument(format!("index {index} was never added to this batch"))),
        }
    }

    /// Cancels every request still running.
    pub fn cancel_all(&self) {
        let tokens = self.shared.lock().cancels.clone();
        for t in tokens {
            t.cancel();
        }
        self.client.wake();
    }

    pub fn counts(&self) -> Counts {
        let st = self.shared.lock();
        let mut c = Counts::default();
        for s in &st.stages {
            match s {
                Stage::Queued => c.queued += 1,
                Stage::InFlight => c.in_flight += 1,
                Stage::Done => c.done += 1,
            }
        }
        c
    }

    /// Requests added so far.
    pub fn len(&self) -> usize {
        self.shared.lock().stages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Batch {
    /// A batch dropped with requests still running cancels them: nothing keeps polling for
    /// results nobody will collect.
    fn drop(&mut self) {
        self.cancel_all();
    }
}
