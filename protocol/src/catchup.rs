//! Catch-up budget: how much one catch-up from one peer may cost the peer that asks.
//!
//! A catch-up is paginated by the responder (`CatchUpReport::next_cursor`), up to 64 MiB a
//! page. Without a budget, a responder that keeps the cursor growing is followed forever;
//! [`CatchUpBudget::next_page`] decides, from what one catch-up has cost so far, whether to
//! ask for the next page.

/// Limits on one catch-up from one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUpBudget {
    /// Most pages followed.
    pub max_pages: u32,
    /// Most bytes of frames taken, over all pages.
    pub max_bytes: u64,
    /// Most frames per job waiting for the job's data before their proofs can be checked.
    pub max_waiting_per_job: usize,
}

impl Default for CatchUpBudget {
    fn default() -> Self {
        Self {
            max_pages: 16,
            max_bytes: 128 << 20,
            max_waiting_per_job: 64,
        }
    }
}

/// What one catch-up has taken so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUpSpent {
    /// Pages received.
    pub pages: u32,
    /// Bytes of frames received.
    pub bytes: u64,
}

impl CatchUpBudget {
    /// Records a page of `bytes` and returns the cursor to ask for next: `next` when the
    /// responder offers more, the cursor grows, and the budget has room for another page;
    /// otherwise `None` (the catch-up ends).
    pub fn next_page(
        &self,
        spent: &mut CatchUpSpent,
        bytes: u64,
        cursor: u64,
        next: Option<u64>,
    ) -> Option<u64> {
        spent.pages = spent.pages.saturating_add(1);
        spent.bytes = spent.bytes.saturating_add(bytes);
        let within = spent.pages < self.max_pages && spent.bytes < self.max_bytes;
        next.filter(|n| *n > cursor && within)
    }
}

/// What each peer has been followed for in the current window. A peer's budget is spent
/// across catch-ups: reconnecting, or the periodic pull while jobs are open, does not renew
/// it; it renews once per window.
#[derive(Debug, Clone)]
pub struct CatchUpLedger<K> {
    window_ms: u64,
    spent: std::collections::BTreeMap<K, (u64, CatchUpSpent)>,
}

impl<K: Ord + Clone> CatchUpLedger<K> {
    /// A ledger whose budgets renew every `window_ms`.
    pub fn new(window_ms: u64) -> Self {
        Self {
            window_ms,
            spent: Default::default(),
        }
    }

    /// What `peer` has spent in the window that holds `now_ms` (a new window starts empty).
    pub fn spent(&mut self, peer: &K, now_ms: u64) -> CatchUpSpent {
        let window = self.window_ms;
        self.spent
            .retain(|_, (start, _)| now_ms.saturating_sub(*start) < window);
        self.spent
            .get(peer)
            .map(|(_, spent)| *spent)
            .unwrap_or_default()
    }

    /// Records what `peer` has spent so far in its current window (one starts at `now_ms`
    /// if none is open).
    pub fn record(&mut self, peer: K, now_ms: u64, spent: CatchUpSpent) {
        let entry = self.spent.entry(peer).or_insert((now_ms, spent));
        entry.1 = spent;
    }

    /// Whether `spent` leaves nothing of `budget`.
    pub fn exhausted(budget: &CatchUpBudget, spent: &CatchUpSpent) -> bool {
        spent.pages >= budget.max_pages || spent.bytes >= budget.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_budget_is_spent_across_catch_ups_and_renews_per_window() {
        let budget = CatchUpBudget {
            max_pages: 2,
            max_bytes: 1_000,
            max_waiting_per_job: 4,
        };
        let mut ledger = CatchUpLedger::new(60_000);
        let mut spent = ledger.spent(&7u8, 0);
        assert_eq!(budget.next_page(&mut spent, 10, 0, Some(1)), Some(1));
        ledger.record(7, 0, spent);
        // A second catch-up (a reconnect) continues from what was spent.
        let mut spent = ledger.spent(&7, 30_000);
        assert_eq!(budget.next_page(&mut spent, 10, 0, Some(1)), None);
        ledger.record(7, 30_000, spent);
        assert!(CatchUpLedger::<u8>::exhausted(
            &budget,
            &ledger.spent(&7, 59_999)
        ));
        // Another peer has its own budget; the window's end renews this one.
        assert_eq!(ledger.spent(&8, 59_999), CatchUpSpent::default());
        assert_eq!(ledger.spent(&7, 60_000), CatchUpSpent::default());
    }

    #[test]
    fn a_catch_up_ends_when_the_cursor_stalls_or_the_budget_is_spent() {
        let budget = CatchUpBudget {
            max_pages: 3,
            max_bytes: 1_000,
            max_waiting_per_job: 4,
        };
        let mut spent = CatchUpSpent::default();
        assert_eq!(budget.next_page(&mut spent, 10, 0, Some(5)), Some(5));
        // A cursor that does not grow ends it.
        assert_eq!(budget.next_page(&mut spent.clone(), 10, 5, Some(5)), None);
        assert_eq!(budget.next_page(&mut spent, 10, 5, Some(9)), Some(9));
        // The third page is the last one followed, however much the responder offers.
        assert_eq!(budget.next_page(&mut spent, 10, 9, Some(10)), None);
        assert_eq!(spent.pages, 3);
        // So is a page that spends the bytes.
        let mut spent = CatchUpSpent::default();
        assert_eq!(budget.next_page(&mut spent, 1_000, 0, Some(1)), None);
        assert_eq!(
            budget.next_page(&mut CatchUpSpent::default(), 1, 0, None),
            None
        );
    }
}
