//! Counters, declared in one place. Envoy shows them as `wasmcustom.toolgate.*`.

use proxy_wasm::types::LogLevel;

use super::host;
use crate::gate::{Effects, Outcome};

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

fn add(metric: Option<u32>, by: u64) {
    if let (Some(id), true) = (metric, by > 0) {
        let _ = host::increment(id, i64::try_from(by).unwrap_or(i64::MAX));
    }
}
