//! HTTP callouts the filter dispatches, told apart by the token id Envoy gives each.
//!
//! Envoy answers every callout of a root context through one callback,
//! `on_http_call_response(token_id, ...)`. Only a token this VM dispatched, and has
//! not yet seen answered, says what the answer is for; anything else is ignored,
//! never taken for the risk feed.

use std::collections::VecDeque;

/// What a callout was dispatched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A poll of the risk feed.
    RiskFeed,
}

/// Callouts dispatched and not yet answered. Envoy answers each one once (a
/// timeout or a reset is an answer too), so this stays small; it is bounded
/// anyway, dropping the oldest, in case a host never answers.
#[derive(Debug, Default)]
pub struct Pending {
    calls: VecDeque<(u32, Purpose)>,
}

/// Most callouts kept waiting for an answer; polls are one per interval.
const MAX_PENDING: usize = 16;

impl Pending {
    /// Remembers a dispatched callout. Returns the purpose of an older callout
    /// dropped for room, whose answer will then be ignored.
    pub fn dispatched(&mut self, token: u32, purpose: Purpose) -> Option<Purpose> {
        self.calls.retain(|(t, _)| *t != token);
        self.calls.push_back((token, purpose));
        if self.calls.len() > MAX_PENDING {
            return self.calls.pop_front().map(|(_, purpose)| purpose);
        }
        None
    }

    /// What the callout answering with `token` was for, forgetting it: `None` for a
    /// token this VM never dispatched or already saw answered.
    pub fn answered(&mut self, token: u32) -> Option<Purpose> {
        let at = self.calls.iter().position(|(t, _)| *t == token)?;
        self.calls.remove(at).map(|(_, purpose)| purpose)
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}
