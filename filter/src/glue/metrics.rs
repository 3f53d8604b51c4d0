//! Counters and the memory gauge, declared in one place. Envoy shows them as `wasmcustom.toolgate.*`.

use std::cell::Cell;

use proxy_wasm::types::LogLevel;

use super::host;
use crate::gate::{Effects, Outcome};
use crate::reason::Reason;
use crate::record::{Binding, DecisionRecord, ListRecord, ResponseRecord, ResultEffect};

#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics {
    allow: Option<u32>,
    deny: Option<u32>,
    error: Option<u32>,
    shadow_deny: Option<u32>,
    fail_open: Option<u32>,
    revocations: Option<u32>,
    config_rejected: Option<u32>,
    history_evicted: Option<u32>,
    history_expired: Option<u32>,
    history_conflicts: Option<u32>,
    risk_stale: Option<u32>,
    risk_feed_errors: Option<u32>,
    risk_feed_updates: Option<u32>,
    callouts_unknown: Option<u32>,
    sessions_bound: Option<u32>,
    sessions_ended: Option<u32>,
    sessions_not_owned: Option<u32>,
    sessions_unknown: Option<u32>,
    sessions_evicted: Option<u32>,
    results_inspected: Option<u32>,
    results_matches: Option<u32>,
    results_recorded: Option<u32>,
    results_redacted: Option<u32>,
    results_refused: Option<u32>,
    results_over_limit: Option<u32>,
    results_errors: Option<u32>,
    lists_filtered: Option<u32>,
    lists_hidden_items: Option<u32>,
    lists_refused: Option<u32>,
    lists_errors: Option<u32>,
    definitions_refused: Option<u32>,
    definitions_hidden: Option<u32>,
}

impl Metrics {
    pub fn define() -> Self {
        let counter = |name: &str| match host::define_counter(name) {
            Ok(id) => Some(id),
            Err(status) => {
                host::log(
                    LogLevel::Warn,
                    &format!("toolgate: cannot define metric {name}: {status:?}"),
                );
                None
            }
        };
        Self {
            allow: counter("toolgate.decisions.allow"),
            deny: counter("toolgate.decisions.deny"),
            error: counter("toolgate.decisions.error"),
            shadow_deny: counter("toolgate.decisions.shadow_deny"),
            fail_open: counter("toolgate.decisions.fail_open"),
            revocations: counter("toolgate.control.revocations"),
            config_rejected: counter("toolgate.config.rejected"),
            history_evicted: counter("toolgate.history.evicted"),
            history_expired: counter("toolgate.history.expired"),
            history_conflicts: counter("toolgate.history.conflicts"),
            risk_stale: counter("toolgate.risk.stale"),
            risk_feed_errors: counter("toolgate.risk.feed_errors"),
            risk_feed_updates: counter("toolgate.risk.feed_updates"),
            callouts_unknown: counter("toolgate.callouts.unknown"),
            sessions_bound: counter("toolgate.sessions.bound"),
            sessions_ended: counter("toolgate.sessions.ended"),
            sessions_not_owned: counter("toolgate.sessions.not_owned"),
            sessions_unknown: counter("toolgate.sessions.unknown"),
            sessions_evicted: counter("toolgate.sessions.evicted"),
            results_inspected: counter("toolgate.results.inspected"),
            results_matches: counter("toolgate.results.matches"),
            results_recorded: counter("toolgate.results.recorded"),
            results_redacted: counter("toolgate.results.redacted"),
            results_refused: counter("toolgate.results.refused"),
            results_over_limit: counter("toolgate.results.over_limit"),
            results_errors: counter("toolgate.results.errors"),
            lists_filtered: counter("toolgate.lists.filtered"),
            lists_hidden_items: counter("toolgate.lists.hidden_items"),
            lists_refused: counter("toolgate.lists.refused"),
            lists_errors: counter("toolgate.lists.errors"),
            definitions_refused: counter("toolgate.definitions.changed_refused"),
            definitions_hidden: counter("toolgate.definitions.changed_hidden"),
        }
    }

    /// Counts a decision and what it did to shared state.
    pub fn count(&self, outcome: Outcome, effects: Effects) {
        let metric = match outcome {
            Outcome::Allow => self.allow,
            Outcome::Deny => self.deny,
            Outcome::Error => self.error,
            Outcome::ShadowDeny => self.shadow_deny,
            Outcome::FailOpen => self.fail_open,
            Outcome::Revocation => self.revocations,
        };
        add(metric, 1);
        add(self.history_evicted, effects.evicted);
        add(self.history_expired, effects.expired);
        add(self.history_conflicts, effects.conflicts);
        add(self.risk_stale, u64::from(effects.risk_stale));
    }

    /// An MCP session was bound, ended, presented by another agent or unknown
    /// (see `session`); `evicted` bindings made room for a new one.
    pub fn session(&self, binding: Option<Binding>, evicted: u64) {
        let metric = match binding {
            Some(Binding::Opened) => self.sessions_bound,
            Some(Binding::Ended) => self.sessions_ended,
            Some(Binding::Other) => self.sessions_not_owned,
            Some(Binding::Unknown) => self.sessions_unknown,
            Some(Binding::Owner) | None => None,
        };
        add(metric, 1);
        add(self.sessions_evicted, evicted);
    }

    /// An answer the result detectors read to its end (or refused): what they did.
    pub fn result(&self, response: &ResponseRecord) {
        add(self.results_inspected, 1);
        add(
            self.results_matches,
            response.detections.iter().map(|d| d.count).sum(),
        );
        let effect = match response.effect {
            ResultEffect::Recorded => self.results_recorded,
            ResultEffect::Redacted => self.results_redacted,
            ResultEffect::Refused => self.results_refused,
            ResultEffect::Passed => None,
        };
        // Shadow mode counts what it would have done only in the log.
        add(effect.filter(|_| response.enforced), 1);
        add(self.results_over_limit, u64::from(response.over_limit));
        add(self.results_errors, u64::from(!response.errors.is_empty()));
    }

    /// A list answer read to its end (or refused): lists filtered, items hidden (shadow
    /// mode hides none: its would-be hidden items are only in the log), refusals.
    pub fn list(&self, list: &ListRecord) {
        let read =
            !list.unfiltered && (list.refused.is_some() || list.items > 0 || list.listed > 0);
        add(
            self.lists_filtered,
            u64::from(read && list.refused.is_none()),
        );
        if !list.shadow {
            add(self.lists_hidden_items, list.hidden.len() as u64);
            let changed = list
                .hidden
                .iter()
                .filter(|h| h.reason == Reason::ToolDefinitionChanged);
            add(self.definitions_hidden, changed.count() as u64);
        }
        add(self.lists_refused, u64::from(list.refused.is_some()));
        add(self.lists_errors, u64::from(!list.errors.is_empty()));
    }

    /// A tool call refused because its tool's definition changed since it was pinned
    /// (enforced refusals only; shadow mode's are in the log).
    pub fn definition(&self, record: &DecisionRecord) {
        let changed = record.reason == Some(Reason::ToolDefinitionChanged) && record.enforced;
        add(self.definitions_refused, u64::from(changed));
    }

    /// A plugin configuration was refused (Envoy keeps the previous one, or does not start).
    pub fn config_rejected(&self) {
        add(self.config_rejected, 1);
    }

    /// Idle session history entries swept on the timer.
    pub fn swept(&self, expired: u64) {
        add(self.history_expired, expired);
    }

    /// A risk feed poll finished.
    pub fn polled(&self, ok: bool) {
        add(
            if ok {
                self.risk_feed_updates
            } else {
                self.risk_feed_errors
            },
            1,
        );
    }

    /// A callout answered with a token this VM did not dispatch (or saw answered).
    pub fn unknown_callout(&self) {
        add(self.callouts_unknown, 1);
    }
}

/// This VM's memory gauge, once [`Metrics::memory`] has defined it.
#[derive(Debug, Clone, Copy)]
enum MemoryGauge {
    Undefined,
    /// Defined, with the size it was last set to.
    Defined {
        id: u32,
        recorded: usize,
    },
    /// Envoy refused to define it; not tried again.
    Unavailable,
}

thread_local! {
    // A VM is one instance of the module with its own statics, run on one worker thread.
    static MEMORY: Cell<MemoryGauge> = const { Cell::new(MemoryGauge::Undefined) };
}

impl Metrics {
    /// Sets this VM's gauge `toolgate.vm.<vm>.memory_bytes` to the size of its linear
    /// memory (`memory.size` pages of 64 KiB), when that changed since it was last set.
    /// Linear memory only grows, so that is a host call per growth, not per request.
    ///
    /// A metric name is one stat for the whole Envoy process: every worker's VM that
    /// defines a name gets the same stat, so a gauge each VM set under one name would
    /// show whichever worker wrote last (and increments would add the workers up).
    /// Each VM defines its own name instead; `vm` gives it the first time, and the glue
    /// passes the decision-id prefix of the VM's gate, which its decision log lines
    /// start with. Only VMs that decide requests (the workers') define one.
    pub fn memory(&self, vm: impl FnOnce() -> String) {
        let bytes = core::arch::wasm32::memory_size::<0>().saturating_mul(65536);
        let id = match MEMORY.get() {
            MemoryGauge::Unavailable => return,
            MemoryGauge::Defined { recorded, .. } if recorded == bytes => return,
            MemoryGauge::Defined { id, .. } => id,
            MemoryGauge::Undefined => {
                let name = format!("toolgate.vm.{}.memory_bytes", vm());
                match host::define_gauge(&name) {
                    Ok(id) => id,
                    Err(status) => {
                        host::log(
                            LogLevel::Warn,
                            &format!("toolgate: cannot define metric {name}: {status:?}"),
                        );
                        MEMORY.set(MemoryGauge::Unavailable);
                        return;
                    }
                }
            }
        };
        // Not recorded: tried again on the next call.
        let recorded = match host::record(id, bytes as u64) {
            Ok(()) => bytes,
            Err(_) => 0,
        };
        MEMORY.set(MemoryGauge::Defined { id, recorded });
    }
}

fn add(metric: Option<u32>, by: u64) {
    if let (Some(id), true) = (metric, by > 0) {
        let _ = host::increment(id, i64::try_from(by).unwrap_or(i64::MAX));
    }
}
