//! Counters, declared in one place. Envoy shows them as `wasmcustom.toolgate.*`.

use proxy_wasm::types::LogLevel;

use super::host;
use crate::gate::Outcome;

#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics {
    allow: Option<u32>,
    deny: Option<u32>,
    error: Option<u32>,
    shadow_deny: Option<u32>,
    fail_open: Option<u32>,
    config_rejected: Option<u32>,
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
            config_rejected: counter("toolgate.config.rejected"),
        }
    }

    pub fn count(&self, outcome: Outcome) {
        let metric = match outcome {
            Outcome::Allow => self.allow,
            Outcome::Deny => self.deny,
            Outcome::Error => self.error,
            Outcome::ShadowDeny => self.shadow_deny,
            Outcome::FailOpen => self.fail_open,
        };
        if let Some(id) = metric {
            let _ = host::increment(id);
        }
    }

    /// A plugin configuration was refused (Envoy keeps the previous one, or does not start).
    pub fn config_rejected(&self) {
        if let Some(id) = self.config_rejected {
            let _ = host::increment(id);
        }
    }
}
