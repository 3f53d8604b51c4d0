//! The root context: reads the plugin configuration once and builds the gate every request shares.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};

use super::host;
use super::http::Request;
use super::metrics::Metrics;
use crate::Gate;

#[derive(Default)]
pub struct Root {
    gate: Option<Rc<Gate>>,
    metrics: Metrics,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        // Defined first, so that a refusal is counted too.
        self.metrics = Metrics::define();
        let config = match host::buffer(BufferType::PluginConfiguration, plugin_configuration_size)
        {
            Ok(bytes) => bytes,
            Err(status) => {
                host::log(
                    LogLevel::Critical,
                    &format!("toolgate: cannot read the plugin configuration: {status:?}"),
                );
                self.metrics.config_rejected();
                return false;
            }
        };
        let now = host::unix_nanos().unwrap_or(0);
        // The seed keeps decision ids distinct across workers and restarts.
        let seed = now ^ (std::ptr::addr_of!(*self) as u64).rotate_left(32);
        match Gate::configure(&config, seed) {
            Ok(gate) => {
                host::log(
                    LogLevel::Info,
                    &format!(
                        "toolgate: configured {} policies, policy version {}",
                        gate.policy_count(),
                        gate.policy_version()
                    ),
                );
                if gate.policy_count() == 0 {
                    host::log(
                        LogLevel::Warn,
                        "toolgate: the policy set is empty; every request will be denied",
                    );
                }
                self.gate = Some(Rc::new(gate));
                true
            }
            Err(error) => {
                // At start-up Envoy exits; for a live (ECDS) update it keeps the previous
                // configuration and rejects this one.
                host::log(
                    LogLevel::Critical,
                    &format!("toolgate: configuration refused: {error}"),
                );
                self.metrics.config_rejected();
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request::new(self.gate.clone(), self.metrics)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
