//! The per-request context: collects headers, peer and body, asks the gate, applies its answer.

use std::rc::Rc;
use std::time::Instant;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel};

use super::host;
use super::metrics::Metrics;
use crate::approval::ApprovalState;
use crate::conclude;
use crate::credential::TokenState;
use crate::enforce;
use crate::gate::{Gate, Input, Verdict};
use crate::http::{Header, HttpRequest};
use crate::identity::Peer;
use crate::revocation;
use crate::shared::{StateError, Stored};

/// The dynamic metadata namespace Envoy's jwt_authn filter writes to.
const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";

/// Filter state the access log reads: `%FILTER_STATE(wasm.toolgate:PLAIN)%`.
const DECISION_LOG_KEY: &str = "toolgate";

pub struct Request {
    gate: Option<Rc<Gate>>,
    metrics: Metrics,
    headers: Vec<Header>,
    decided: bool,
}

impl Request {
    pub fn new(gate: Option<Rc<Gate>>, metrics: Metrics) -> Self {
        Self {
            gate,
            metrics,
            headers: Vec::new(),
            decided: false,
        }
    }

    /// Denies when the glue itself cannot do its job: nothing is forwarded, and the
    /// refusal is logged and counted like any other.
    fn fail_closed(&mut self, why: &str) -> Action {
        self.decided = true;
        host::log(LogLevel::Error, &format!("toolgate: failing closed: {why}"));
        let verdict = conclude::internal_failure(why, host::unix_nanos().unwrap_or(0));
        self.apply(verdict)
    }

    /// Decides with what has been collected and applies the answer.
    fn decide(&mut self, body: &[u8], body_too_large: bool) -> Action {
        self.decided = true;
        let Some(gate) = self.gate.clone() else {
            return self.fail_closed("toolgate is not configured");
        };
        let token = self.token_state(&gate);
        let revocations = match self.revocations(&gate, &token) {
            Ok(found) => found,
            Err(error) => return self.fail_closed(&format!("cannot read revocations: {error}")),
        };
        let certificate = host::property(&["connection", "peer_certificate"])
            .ok()
            .flatten();
        let peer = Peer::from_envoy_certificate(certificate.as_deref());
        let route_name = gate
            .wants_route_name()
            .then(|| property_text(&["xds", "route_name"]))
            .flatten();
        let cluster_name = gate
            .wants_cluster_name()
            .then(|| property_text(&["xds", "cluster_name"]))
            .flatten();
        let input = Input {
            request: HttpRequest {
                headers: &self.headers,
                body,
            },
            peer: &peer,
            route_name: route_name.as_deref(),
            cluster_name: cluster_name.as_deref(),
            body_too_large,
            token,
            approval: self.approval_state(&gate),
            revocations,
            shared: Some(&host::Shared),
            unix_nanos: host::unix_nanos().unwrap_or(0),
        };
        let started = Instant::now();
        let verdict = gate.decide(&input, &|| started.elapsed().as_nanos() as u64);
        self.apply(verdict)
    }

    /// What jwt_authn left in dynamic metadata, when credentials are configured.
    fn token_state(&self, gate: &Gate) -> TokenState {
        match gate.credential_keys().map(jwt_metadata) {
            None => TokenState::Absent,
            Some(Ok((payload, failure))) => {
                TokenState::from_envoy(payload.as_deref(), failure.as_deref())
            }
            Some(Err(_)) => TokenState::Unreadable,
        }
    }

    /// The shared-data revocations that match this request's task and token.
    fn revocations(
        &self,
        gate: &Gate,
        token: &TokenState,
    ) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        let mut found = Vec::new();
        for key in gate.revocation_keys(&self.headers, token) {
            // Read through the shared-state model; the gate decodes (and fails closed on) the value.
            let entry = Stored::<revocation::Expiry>::new(key);
            if let Some((value, _)) = entry.load(&host::Shared)? {
                found.push((entry.key().to_owned(), value));
            }
        }
        Ok(found)
    }

    /// What jwt_authn concluded about the approval token, when the request has one.
    fn approval_state(&self, gate: &Gate) -> ApprovalState {
        match gate.approval_keys(&self.headers).map(jwt_metadata) {
            None => ApprovalState::Absent,
            Some(Ok((payload, failure))) => {
                ApprovalState::from_envoy(payload.as_deref(), failure.as_deref())
            }
            Some(Err(_)) => ApprovalState::Unreadable,
        }
    }

    /// Counts and logs the verdict, then forwards or refuses as it says.
    fn apply(&mut self, verdict: Verdict) -> Action {
        for write in &verdict.writes {
            if let Err(status) = host::set_shared_data(&write.key, &write.value, 0) {
                return self.fail_closed(&format!("cannot record {}: {status:?}", write.key));
            }
        }
        // Annotate before counting and logging, so a request that fails closed here is
        // counted and logged once, as the error it became.
        if let enforce::Action::Forward { remove, set } = &verdict.action {
            let edits = remove
                .iter()
                .try_for_each(|name| host::remove_request_header(name))
                .and_then(|()| {
                    set.iter()
                        .try_for_each(|(name, value)| host::set_request_header(name, value))
                });
            if let Err(status) = edits {
                return self.fail_closed(&format!("cannot annotate the request: {status:?}"));
            }
        }
        self.metrics.count(verdict.outcome, verdict.effects);
        if let Some(gate) = &self.gate {
            self.metrics.memory(|| gate.decision_id_prefix());
        }
        let line = verdict.record.to_json();
        if let Err(status) = host::set_filter_state(DECISION_LOG_KEY, line.as_bytes()) {
            host::log(
                LogLevel::Error,
                &format!("toolgate: decision log not written ({status:?}): {line}"),
            );
        }
        match verdict.action {
            enforce::Action::Forward { .. } => Action::Continue,
            enforce::Action::Respond {
                status,
                headers,
                body,
            } => {
                let details = "toolgate_denied";
                if let Err(e) = host::send_response(status, details, &headers, &body) {
                    host::log(
                        LogLevel::Error,
                        &format!("toolgate: cannot send the denial: {e:?}"),
                    );
                }
                Action::Pause
            }
        }
    }
}

impl Request {
    /// The largest body toolgate evaluates (none without a configured gate: it fails closed).
    fn body_limit(&self) -> usize {
        self.gate.as_ref().map_or(0, |g| g.config().max_body_bytes)
    }

    /// The request's `content-length`, when it sends a valid one.
    fn declared_length(&self) -> Option<usize> {
        let (_, value) = self.headers.iter().find(|(n, _)| n == "content-length")?;
        std::str::from_utf8(value).ok()?.trim().parse().ok()
    }
}

/// A jwt_authn provider's verified payload and failure status, by their metadata keys.
type JwtMetadata = (Option<Vec<u8>>, Option<Vec<u8>>);

fn jwt_metadata((payload_key, failure_key): (&str, &str)) -> host::HostResult<JwtMetadata> {
    let read = |key: &str| host::property(&["metadata", "filter_metadata", JWT_AUTHN, key]);
    Ok((read(payload_key)?, read(failure_key)?))
}

fn property_text(path: &[&str]) -> Option<String> {
    host::property(path)
        .ok()
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        match host::request_headers() {
            Ok(headers) => self.headers = headers,
            Err(status) => {
                return self.fail_closed(&format!("cannot read request headers: {status:?}"))
            }
        }
        #[cfg(feature = "test-crash")]
        if self
            .headers
            .iter()
            .any(|(name, _)| name == "x-toolgate-test-crash")
        {
            std::process::abort();
        }
        if end_of_stream {
            return self.decide(&[], false);
        }
        // A body declared too large is refused now, before Envoy buffers any of it: the
        // codecs differ in when their own buffer limit answers (HTTP/1.1 with a plain 413
        // and no decision), and toolgate's refusal names the request and its caller.
        if self.declared_length().is_some_and(|length| length > self.body_limit()) {
            return self.decide(&[], true);
        }
        // Hold the headers until the body is in (needs allow_on_headers_stop_iteration).
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.decided {
            return Action::Continue;
        }
        if body_size > self.body_limit() {
            return self.decide(&[], true);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        match host::buffer(BufferType::HttpRequestBody, body_size) {
            Ok(body) => self.decide(&body, false),
            Err(status) => self.fail_closed(&format!("cannot read the request body: {status:?}")),
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.decided {
            return Action::Continue;
        }
        // Trailers end the body without an end-of-stream body callback.
        match host::buffer(BufferType::HttpRequestBody, usize::MAX) {
            Ok(body) => {
                let too_large = body.len() > self.body_limit();
                self.decide(if too_large { &[] } else { &body }, too_large)
            }
            Err(status) => self.fail_closed(&format!("cannot read the request body: {status:?}")),
        }
    }
}
