//! The root context: reads the plugin configuration once and builds the gate every request shares.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};

use super::host;
use super::http::Request;
use super::metrics::Metrics;
use crate::callout::{self, Purpose};
use crate::{history, risk, session, shared, Gate};

#[derive(Default)]
pub struct Root {
    gate: Option<Rc<Gate>>,
    metrics: Metrics,
    /// Callouts dispatched and not yet answered, by token id.
    callouts: callout::Pending,
}

/// One worker sweeps the session history per interval: the one whose claim wins.
const SWEEP_CLAIM_KEY: &str = "toolgate/history/v1/sweep-claim";

/// The timer's period: the sweep and the poll run on whole seconds.
const TICK_MS: u32 = 1000;

impl Root {
    /// Creates the session history's, the MCP sessions' and the A2A tasks' shards, and starts the
    /// timer, when history or the risk feed is configured.
    fn start_timers(&self, gate: &Gate) {
        let config = gate.config();
        if let Some(history) = &config.history {
            if let Err(e) = history::create_shards(&host::Shared, history) {
                host::log(LogLevel::Error, &format!("toolgate: session history: {e}"));
            }
        }
        if let Some(sessions) = &config.sessions {
            if let Err(e) = session::create_shards(&host::Shared, sessions) {
                host::log(LogLevel::Error, &format!("toolgate: MCP sessions: {e}"));
            }
        }
        if let Some(a2a) = &config.a2a {
            if let Err(e) = crate::a2a_tasks::create_shards(&host::Shared, &a2a.tasks) {
                host::log(LogLevel::Error, &format!("toolgate: A2A tasks: {e}"));
            }
        }
        if config.history.is_some() || config.risk_feed.is_some() {
            if let Err(status) = host::set_tick_period(TICK_MS) {
                host::log(
                    LogLevel::Error,
                    &format!(
                        "toolgate: cannot start the timer ({status:?}): no sweeps, no risk polls"
                    ),
                );
            }
        }
    }

    fn sweep(&self, config: &crate::config::History, now_ns: u64) {
        let now = i64::try_from(now_ns / 1_000_000_000).unwrap_or(i64::MAX);
        match history::sweep_all(&host::Shared, config, now) {
            Ok((removed, problems)) => {
                self.metrics.swept(removed.expired);
                for problem in problems {
                    host::log(
                        LogLevel::Error,
                        &format!("toolgate: session history: {problem}"),
                    );
                }
            }
            Err(e) => host::log(
                LogLevel::Error,
                &format!("toolgate: session history sweep: {e}"),
            ),
        }
    }

    fn poll(&mut self, feed: &crate::config::RiskFeed) {
        let headers = vec![
            (":method", "GET"),
            (":path", feed.path.as_str()),
            (":authority", feed.authority.as_str()),
            ("accept", "application/json"),
        ];
        let timeout = std::time::Duration::from_millis(feed.timeout_ms);
        match self.dispatch_http_call(&feed.cluster, headers, None, vec![], timeout) {
            Ok(token) => {
                if let Some(dropped) = self.callouts.dispatched(token, Purpose::RiskFeed) {
                    host::log(
                        LogLevel::Warn,
                        &format!("toolgate: a {dropped:?} callout was never answered; forgotten"),
                    );
                }
            }
            Err(status) => {
                // No call went out (e.g. no such cluster): the same as an unreachable feed.
                host::log(
                    LogLevel::Warn,
                    &format!(
                        "toolgate: cannot poll the risk feed on cluster {:?}: {status:?}",
                        feed.cluster
                    ),
                );
                self.record_poll(None, &[]);
            }
        }
    }

    /// Stores a poll's result for every worker, and counts and logs it.
    fn record_poll(&self, status: Option<u32>, body: &[u8]) {
        let now = host::unix_nanos().unwrap_or(0);
        let recorded = risk::record_poll(&host::Shared, &risk::Poll { status, body }, now);
        self.metrics.polled(recorded.is_ok());
        if let Err(error) = recorded {
            host::log(
                LogLevel::Warn,
                &format!(
                    "toolgate: risk feed poll failed, risk is stale until one succeeds: {error}"
                ),
            );
        }
    }
}

impl Context for Root {
    /// A callout answered (or failed: then there is no `:status`). Only a token
    /// this VM dispatched says what for; any other answer is counted and ignored.
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        match self.callouts.answered(token_id) {
            Some(Purpose::RiskFeed) => {}
            None => {
                self.metrics.unknown_callout();
                host::log(
                    LogLevel::Warn,
                    &format!(
                        "toolgate: ignoring the answer to callout {token_id}, which this VM \
                         did not dispatch or already saw answered"
                    ),
                );
                return;
            }
        }
        let status = host::http_call_response_headers().ok().and_then(|headers| {
            headers
                .iter()
                .find(|(name, _)| name == ":status")
                .and_then(|(_, value)| std::str::from_utf8(value).ok()?.parse().ok())
        });
        let body = host::buffer(BufferType::HttpCallResponseBody, body_size).unwrap_or_default();
        self.record_poll(status, &body);
    }
}

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
                self.start_timers(&gate);
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

    fn on_tick(&mut self) {
        let Some(gate) = self.gate.clone() else {
            return;
        };
        let Ok(now) = host::unix_nanos() else {
            return;
        };
        if let Some(history) = &gate.config().history {
            let interval = history.sweep_seconds.saturating_mul(1_000_000_000);
            if shared::claim(&host::Shared, SWEEP_CLAIM_KEY, now, interval).unwrap_or(false) {
                self.sweep(history, now);
            }
        }
        if let Some(feed) = &gate.config().risk_feed {
            let interval = feed.poll_seconds.saturating_mul(1_000_000_000);
            if shared::claim(&host::Shared, risk::POLL_CLAIM_KEY, now, interval).unwrap_or(false) {
                self.poll(feed);
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
