//! Envoy's shared data as the core sees it: one key-value store per Envoy process, with compare-and-swap.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// A value and the version (`cas`) it was read at.
pub type Versioned = (Vec<u8>, u32);

/// Shared data, as every worker VM of one Envoy process sees it. The glue implements
/// it with host calls; [`Memory`] stands in for it in tests and the CLI.
pub trait SharedData {
    /// The value under `key` and its version, or `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Versioned>, String>;
    /// Stores `value` if the entry is still at version `cas` (0: unconditionally;
    /// a missing key is always created). `Ok(false)` when another writer came first.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, String>;
}

/// An in-memory [`SharedData`] with Envoy's semantics, for tests and the CLI.
#[derive(Default)]
pub struct Memory {
    entries: RefCell<HashMap<String, Versioned>>,
    last_cas: Cell<u32>,
}

impl Memory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SharedData for Memory {
    fn get(&self, key: &str) -> Result<Option<Versioned>, String> {
        Ok(self.entries.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, String> {
        let mut entries = self.entries.borrow_mut();
        if let Some((_, current)) = entries.get(key) {
            if cas != 0 && cas != *current {
                return Ok(false);
            }
        }
        let next = self.last_cas.get().wrapping_add(1).max(1);
        self.last_cas.set(next);
        entries.insert(key.to_owned(), (value.to_vec(), next));
        Ok(true)
    }
}

/// Claims a periodic job (a sweep, a poll) for this worker: true when the last
/// claim under `key` is at least `interval_ns` old and this worker's
/// compare-and-swap won, so one worker of the process runs it per interval.
pub fn claim(
    shared: &dyn SharedData,
    key: &str,
    now_ns: u64,
    interval_ns: u64,
) -> Result<bool, String> {
    let (last, cas) = match shared.get(key)? {
        Some((bytes, cas)) => (
            std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0),
            cas,
        ),
        None => (0, 0),
    };
    if now_ns.saturating_sub(last) < interval_ns {
        return Ok(false);
    }
    shared.set(key, now_ns.to_string().as_bytes(), cas)
}
