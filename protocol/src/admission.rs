//! Admission of job submissions at an entry peer: how many one peer may send in a window.
//!
//! A pure rule (time is an argument): [`SubmitWindow::admit`] counts each peer's submissions
//! in a sliding window and refuses the one that would exceed the rate, saying when the peer
//! may try again. The node pairs it with a bound on submissions prepared at once.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// The most submissions one peer may make in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitRate {
    /// Submissions allowed per window.
    pub max: u32,
    /// The window's length in ms.
    pub window_ms: u64,
}

impl Default for SubmitRate {
    /// 10 per minute: far more than a person submitting jobs, far less than a flood.
    fn default() -> Self {
        Self {
            max: 10,
            window_ms: 60_000,
        }
    }
}

/// A submission refused for the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "this peer accepts at most {max} submissions per {window_s} s from one peer; retry in {retry_s} s",
    window_s = .window_ms.div_ceil(1000),
    retry_s = .retry_after_ms.div_ceil(1000)
)]
pub struct RateRefusal {
    /// The rate's allowance.
    pub max: u32,
    /// The rate's window in ms.
    pub window_ms: u64,
    /// When the oldest counted submission leaves the window.
    pub retry_after_ms: u64,
}

/// Peers tracked before the window drops every peer with no submission left in it.
const PRUNE_ABOVE_PEERS: usize = 1024;

/// Each peer's recent submissions (times in ms), within one [`SubmitRate`].
#[derive(Debug, Clone)]
pub struct SubmitWindow<P> {
    rate: SubmitRate,
    recent: HashMap<P, VecDeque<u64>>,
}

impl<P: Hash + Eq + Clone> SubmitWindow<P> {
    /// An empty window under `rate`.
    pub fn new(rate: SubmitRate) -> Self {
        Self {
            rate,
            recent: HashMap::new(),
        }
    }

    /// Counts a submission by `peer` at `now_ms`, or refuses it when the peer already made
    /// `max` in the window ending now (a refused submission is not counted).
    pub fn admit(&mut self, peer: &P, now_ms: u64) -> Result<(), RateRefusal> {
        let window_ms = self.rate.window_ms;
        let fresh = |t: &u64| now_ms.saturating_sub(*t) < window_ms;
        if self.recent.len() > PRUNE_ABOVE_PEERS {
            self.recent
                .retain(|_, times| times.back().is_some_and(fresh));
        }
        let times = self.recent.entry(peer.clone()).or_default();
        while times.front().is_some_and(|t| !fresh(t)) {
            times.pop_front();
        }
        if times.len() >= self.rate.max as usize {
            let oldest = times.front().copied().unwrap_or(now_ms);
            return Err(RateRefusal {
                max: self.rate.max,
                window_ms,
                retry_after_ms: (oldest + window_ms).saturating_sub(now_ms),
            });
        }
        times.push_back(now_ms);
        Ok(())
    }

    /// Peers with submissions counted (for tests and metrics).
    pub fn peers(&self) -> usize {
        self.recent.len()
    }
}

impl<P: Hash + Eq + Clone> Default for SubmitWindow<P> {
    fn default() -> Self {
        Self::new(SubmitRate::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: SubmitRate = SubmitRate {
        max: 3,
        window_ms: 60_000,
    };

    #[test]
    fn a_peer_over_the_rate_is_refused_until_its_oldest_submission_leaves_the_window() {
        let mut window = SubmitWindow::new(RATE);
        for t in [0, 1_000, 2_000] {
            assert_eq!(window.admit(&"a", t), Ok(()));
        }
        let refusal = window.admit(&"a", 30_000).unwrap_err();
        assert_eq!(refusal.retry_after_ms, 30_000);
        assert_eq!(
            refusal.to_string(),
            "this peer accepts at most 3 submissions per 60 s from one peer; retry in 30 s"
        );
        // Refusals are not counted: the first submission leaves the window at 60 s.
        assert!(window.admit(&"a", 59_999).is_err());
        assert_eq!(window.admit(&"a", 60_000), Ok(()));
        assert!(window.admit(&"a", 60_001).is_err());
        // Another peer has its own allowance.
        assert_eq!(window.admit(&"b", 60_001), Ok(()));
    }

    #[test]
    fn peers_with_nothing_in_the_window_are_forgotten() {
        let mut window = SubmitWindow::new(RATE);
        for peer in 0..=PRUNE_ABOVE_PEERS as u32 {
            assert_eq!(window.admit(&peer, 0), Ok(()));
        }
        assert_eq!(window.peers(), PRUNE_ABOVE_PEERS + 1);
        assert_eq!(window.admit(&u32::MAX, 60_000), Ok(()));
        assert_eq!(window.peers(), 1);
    }

    #[test]
    fn a_clock_that_goes_back_never_panics_or_frees_the_peer() {
        let mut window = SubmitWindow::new(RATE);
        for t in [10_000, 10_000, 10_000] {
            assert_eq!(window.admit(&"a", t), Ok(()));
        }
        let refusal = window.admit(&"a", 0).unwrap_err();
        assert_eq!(refusal.retry_after_ms, 70_000);
    }
}
