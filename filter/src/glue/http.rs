//! The per-request context: collects headers, peer and body, asks the gate, applies its answer.

use std::rc::Rc;
use std::time::Instant;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel};

use super::host;
use super::metrics::Metrics;
use crate::approval::ApprovalState;
use crate::conclude;
use crate::config::Enforcement;
use crate::credential::TokenState;
use crate::enforce;
use crate::gate::{Gate, Input, Verdict};
use crate::http::{Header, HttpRequest};
use crate::identity::Peer;
use crate::list_answer::{self, ListAsked, ListFilter, ListOutcome};
use crate::listing::ListMethod;
use crate::record::DecisionRecord;
use crate::refusal::Refusal;
use crate::response::{Reader, Refused, Shape};
use crate::results::{self, Findings, Scan};
use crate::revocation;
use crate::session::{self, Answer};
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
    /// The record of a forwarded request, until its answer's status is added to it.
    forwarded: Option<DecisionRecord>,
    /// An answer whose body the result detectors read, chunk by chunk.
    inspecting: Option<Inspecting>,
    /// A list answer being filtered, chunk by chunk.
    listing: Option<Listing>,
    /// An answer to an A2A message whose tasks are bound to the agent, chunk by chunk.
    binding: Option<TaskBinding>,
}

/// An answer to an A2A message being read for the tasks it creates.
struct TaskBinding {
    /// The request's record, which gets the bound task ids.
    record: DecisionRecord,
    reader: Reader,
    owner: String,
    bound: Vec<String>,
}

/// What `Request::gather` read from Envoy for the gate.
struct Gathered {
    peer: Peer,
    route_name: Option<String>,
    cluster_name: Option<String>,
    token: TokenState,
    approval: ApprovalState,
    revocations: Vec<(String, Vec<u8>)>,
}

impl Gathered {
    /// The gate's input for this request, with these headers and body.
    fn with_input<R>(
        self,
        headers: &[Header],
        body: &[u8],
        body_too_large: bool,
        f: impl FnOnce(&Input<'_>) -> R,
    ) -> R {
        let input = Input {
            request: HttpRequest { headers, body },
            peer: &self.peer,
            route_name: self.route_name.as_deref(),
            cluster_name: self.cluster_name.as_deref(),
            body_too_large,
            token: self.token,
            approval: self.approval,
            revocations: self.revocations,
            shared: Some(&host::Shared),
            unix_nanos: host::unix_nanos().unwrap_or(0),
        };
        f(&input)
    }
}

/// A list answer being filtered, between body chunks.
struct Listing {
    /// The request's record, which gets the `list` block.
    record: DecisionRecord,
    asked: ListAsked,
    reader: Reader,
    outcome: ListOutcome,
}

/// The response side of one request, between body chunks.
struct Inspecting {
    /// The request's record, which gets the `response` block.
    record: DecisionRecord,
    reader: Reader,
    findings: Findings,
    /// False in shadow mode: detect and log, change nothing.
    enforce: bool,
    /// Matches already in the logged record.
    logged_matches: u64,
}

impl Request {
    pub fn new(gate: Option<Rc<Gate>>, metrics: Metrics) -> Self {
        Self {
            gate,
            metrics,
            headers: Vec::new(),
            decided: false,
            forwarded: None,
            inspecting: None,
            listing: None,
            binding: None,
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
        let gathered = match self.gather(&gate) {
            Ok(gathered) => gathered,
            Err(error) => return self.fail_closed(&error),
        };
        let verdict = gathered.with_input(&self.headers, body, body_too_large, |input| {
            let started = Instant::now();
            gate.decide(input, &|| started.elapsed().as_nanos() as u64)
        });
        self.apply(verdict)
    }

    /// What the gate needs from Envoy besides the headers and body: the peer, route and
    /// cluster names, what jwt_authn concluded, and the revocations that match.
    fn gather(&self, gate: &Gate) -> Result<Gathered, String> {
        let token = self.token_state(gate);
        let revocations = self
            .revocations(gate, &token)
            .map_err(|error| format!("cannot read revocations: {error}"))?;
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
        Ok(Gathered {
            peer,
            route_name,
            cluster_name,
            token,
            approval: self.approval_state(gate),
            revocations,
        })
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
        let session = verdict.record.mcp_session.as_ref();
        self.metrics.session(session.map(|s| s.binding), 0);
        // Written now, so that a request whose answer never comes is logged too.
        log_record(&verdict.record);
        match verdict.action {
            enforce::Action::Forward { .. } => {
                self.forwarded = Some(verdict.record);
                Action::Continue
            }
            respond @ enforce::Action::Respond { .. } => respond_with(respond),
        }
    }

    /// The answer to a forwarded request: its status goes into the record, and a
    /// session it opens is bound to the agent (or the answer is refused when it cannot be).
    /// The record comes back, logged, when the answer goes on.
    fn answered(
        &mut self,
        mut record: DecisionRecord,
        gate: &Gate,
    ) -> Result<DecisionRecord, Action> {
        let status = host::response_header(":status").map(|status| {
            let text = status.as_deref().and_then(|s| std::str::from_utf8(s).ok());
            text.and_then(|s| s.parse().ok()).unwrap_or(0)
        });
        let session_id = host::response_header(session::HEADER);
        let now = host::unix_nanos().unwrap_or(0) / 1_000_000_000;
        let answered = match (status, session_id) {
            (Ok(status), Ok(session_id)) => {
                let answer = Answer {
                    status,
                    session_id: session_id.as_deref(),
                };
                let now = i64::try_from(now).unwrap_or(i64::MAX);
                session::answered(gate.config(), &mut record, &answer, &host::Shared, now)
                    .map_err(|e| e.to_string())
            }
            (Err(e), _) | (_, Err(e)) => Err(format!("cannot read the answer's headers: {e:?}")),
        };
        match answered {
            Ok(answered) => {
                self.metrics.session(answered.binding, answered.evicted);
                log_record(&record);
                Ok(record)
            }
            Err(error) => {
                host::log(
                    LogLevel::Error,
                    &format!("toolgate: failing closed on the answer: {error}"),
                );
                let refusal = session::refuse_answer(&mut record, &error);
                log_record(&record);
                Err(respond_with(refusal))
            }
        }
    }

    /// Starts reading the answer's body when the result detectors want it: only for
    /// `tools/call`, `resources/read` and `prompts/get` with `results` configured;
    /// every other answer streams through untouched, at no cost.
    fn inspect(&mut self, record: DecisionRecord, gate: &Gate, end_of_stream: bool) -> Action {
        let config = gate.config();
        let Some(asked) = results::asked(config, &record) else {
            return Action::Continue;
        };
        if end_of_stream {
            return Action::Continue;
        }
        let headers = host::response_header("content-type")
            .and_then(|t| Ok((t, host::response_header("content-encoding")?)));
        let (content_type, content_encoding) = match headers {
            Ok(headers) => headers,
            Err(status) => {
                return self.refuse_answer(
                    record,
                    asked,
                    gate,
                    &format!("cannot read the answer's headers: {status:?}"),
                )
            }
        };
        let Some(reader) = results::reader(
            config,
            asked.clone(),
            content_type.as_deref(),
            content_encoding.as_deref(),
        ) else {
            return Action::Continue;
        };
        // What goes on may be shorter or longer than what came: no declared length.
        if let Err(status) = host::remove_response_header("content-length") {
            return self.refuse_answer(
                record,
                asked,
                gate,
                &format!("cannot remove content-length: {status:?}"),
            );
        }
        self.inspecting = Some(Inspecting {
            enforce: record.mode == Enforcement::Enforce,
            record,
            reader,
            findings: Findings::default(),
            logged_matches: 0,
        });
        Action::Continue
    }

    /// Starts reading an answer to an A2A message for the tasks it creates (`a2a_tasks`).
    fn bind_tasks(
        &mut self,
        mut record: DecisionRecord,
        gate: &Gate,
        end_of_stream: bool,
    ) -> Action {
        let headers = host::response_header("content-type")
            .and_then(|t| Ok((t, host::response_header("content-encoding")?)));
        let Ok((content_type, content_encoding)) = headers else {
            // Unread headers: the answer cannot be read for its tasks.
            let body = session::refuse_answer(&mut record, "cannot read the answer's headers");
            log_record(&record);
            return respond_with(body);
        };
        let Some((reader, owner)) = crate::a2a_tasks::binds(
            gate.config(),
            &record,
            content_type.as_deref(),
            content_encoding.as_deref(),
        ) else {
            return Action::Continue;
        };
        if end_of_stream {
            return Action::Continue;
        }
        if let Err(status) = host::remove_response_header("content-length") {
            let error = format!("cannot remove content-length: {status:?}");
            let body = session::refuse_answer(&mut record, &error);
            log_record(&record);
            return respond_with(body);
        }
        self.binding = Some(TaskBinding {
            record,
            reader,
            owner,
            bound: Vec::new(),
        });
        Action::Continue
    }

    /// One chunk of an answer to an A2A message: the tasks it carries are bound
    /// before it goes on (or it is refused in its place).
    fn bind_chunk(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (Some(mut binding), Some(gate)) = (self.binding.take(), self.gate.clone()) else {
            return Action::Continue;
        };
        let Some(config) = gate.config().a2a.as_ref() else {
            return Action::Continue;
        };
        let chunk = host::buffer(BufferType::HttpResponseBody, body_size);
        let now = host::unix_nanos().unwrap_or(0) / 1_000_000_000;
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let before = binding.bound.len();
        let TaskBinding {
            reader,
            owner,
            bound,
            ..
        } = &mut binding;
        let mut binder =
            crate::a2a_tasks::Binder::new(&host::Shared, &config.tasks, owner, now, bound);
        let out = match &chunk {
            Ok(chunk) => reader.feed(&mut binder, chunk, end_of_stream),
            Err(status) => reader.fail(&format!("cannot read the answer's body: {status:?}")),
        };
        let replaced = replace_chunk(&chunk, &out, body_size, "the answer", "toolgate_a2a_failed");
        let refused = binding.reader.stats().refused;
        if let Err(why) = replaced {
            binding.record.errors.push(why);
        }
        if let Some(a2a) = &mut binding.record.a2a {
            a2a.tasks_bound.clone_from(&binding.bound);
        }
        if let Some(reason) = refused {
            binding.record.decision = crate::record::Decision::Deny;
            binding.record.reason = Some(reason);
            binding
                .record
                .errors
                .extend(binding.reader.stats().error.clone());
        }
        if binding.bound.len() > before || binding.reader.finished() || refused.is_some() {
            log_record(&binding.record);
        }
        if !binding.reader.finished() {
            self.binding = Some(binding);
        }
        Action::Continue
    }

    /// Starts filtering a list answer (`docs/lists.md`): its body is read and the list
    /// result rewritten to what the agent may use.
    fn list(
        &mut self,
        record: DecisionRecord,
        asked: ListAsked,
        gate: &Gate,
        end_of_stream: bool,
    ) -> Action {
        if end_of_stream {
            return Action::Continue;
        }
        let headers = host::response_header("content-type")
            .and_then(|t| Ok((t, host::response_header("content-encoding")?)));
        let (content_type, content_encoding) = match headers {
            Ok(headers) => headers,
            Err(status) => {
                return self.refuse_answer(
                    record,
                    asked.asked,
                    gate,
                    &format!("cannot read the answer's headers: {status:?}"),
                )
            }
        };
        let reader = list_answer::reader(
            gate.config(),
            &asked,
            content_type.as_deref(),
            content_encoding.as_deref(),
        );
        // What goes on may be shorter or longer than what came: no declared length.
        if let Err(status) = host::remove_response_header("content-length") {
            return self.refuse_answer(
                record,
                asked.asked,
                gate,
                &format!("cannot remove content-length: {status:?}"),
            );
        }
        self.listing = Some(Listing {
            record,
            asked,
            reader,
            outcome: ListOutcome::default(),
        });
        Action::Continue
    }

    /// One chunk of a list answer: what the reader and the list filter make of it replaces it.
    fn list_chunk(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (Some(mut listing), Some(gate)) = (self.listing.take(), self.gate.clone()) else {
            return Action::Continue;
        };
        let started = Instant::now();
        let chunk = host::buffer(BufferType::HttpResponseBody, body_size);
        let seen_before = listing.outcome.filtered.is_some() || listing.outcome.refusal.is_some();
        let out = {
            let this = &*self;
            // The request's facts are gathered only when a list result arrives.
            let mut filter = |method: ListMethod, items: &[serde_json::Value]| {
                let gathered = this.gather(&gate).map_err(Refusal::internal)?;
                gathered.with_input(&this.headers, &[], false, |input| {
                    gate.filter_list(input, method, items)
                })
            };
            let Listing {
                asked,
                reader,
                outcome,
                ..
            } = &mut listing;
            let mut processor = ListFilter::new(asked, outcome, &mut filter);
            match &chunk {
                Ok(chunk) => reader.feed(&mut processor, chunk, end_of_stream),
                // Unread bytes must not go on as they are: the answer is refused.
                Err(status) => reader.fail(&format!("cannot read the answer's body: {status:?}")),
            }
        };
        listing.outcome.elapsed += started.elapsed();
        let replaced = replace_chunk(&chunk, &out, body_size, "the list", "toolgate_list_failed");
        if let Err(why) = replaced {
            listing.outcome.errors.push(why);
            self.finish_list(listing);
            return Action::Pause;
        }
        let seen = listing.outcome.filtered.is_some() || listing.outcome.refusal.is_some();
        if listing.reader.finished() {
            self.finish_list(listing);
        } else {
            if seen && !seen_before {
                // Logged now too: a stream whose end never comes still shows what was hidden.
                let list = list_answer::record(&listing.asked, &listing.reader, &listing.outcome);
                listing.record.list = Some(list);
                log_record(&listing.record);
            }
            self.listing = Some(listing);
        }
        Action::Continue
    }

    /// The list answer was read to its end (or refused): its record and counters.
    fn finish_list(&mut self, mut listing: Listing) {
        let list = list_answer::record(&listing.asked, &listing.reader, &listing.outcome);
        if let Some(error) = list.errors.first() {
            host::log(LogLevel::Error, &format!("toolgate: on the list: {error}"));
        }
        self.metrics.list(&list);
        listing.record.list = Some(list);
        log_record(&listing.record);
    }

    /// Refuses an answer before any of its body went on (toolgate's own failure).
    fn refuse_answer(
        &mut self,
        mut record: DecisionRecord,
        asked: crate::response::Asked,
        gate: &Gate,
        error: &str,
    ) -> Action {
        host::log(
            LogLevel::Error,
            &format!("toolgate: failing closed on the answer: {error}"),
        );
        let shape = Shape {
            tools_call: gate.config().refusals.tools_call,
        };
        let body = crate::response::refusal(&asked, &Refused::internal(error), shape);
        record.response = Some(crate::record::ResponseRecord {
            effect: crate::record::ResultEffect::Refused,
            enforced: true,
            reason: Some(crate::reason::Reason::Internal),
            errors: vec![error.to_owned()],
            ..Default::default()
        });
        if let Some(response) = &record.response {
            self.metrics.result(response);
        }
        log_record(&record);
        respond_with(enforce::Action::Respond {
            status: 200,
            headers: vec![
                ("content-type", "application/json".to_owned()),
                (enforce::DECISION_ID, record.decision_id.clone()),
            ],
            body: serde_json::to_vec(&body).unwrap_or_default(),
        })
    }

    /// One chunk of an inspected answer: what the reader makes of it replaces it.
    fn inspect_chunk(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (Some(mut inspecting), Some(gate)) = (self.inspecting.take(), self.gate.clone()) else {
            return Action::Continue;
        };
        let Some(config) = gate.config().results.as_ref() else {
            return Action::Continue;
        };
        let started = Instant::now();
        let chunk = host::buffer(BufferType::HttpResponseBody, body_size);
        let now = host::unix_nanos().unwrap_or(0) / 1_000_000_000;
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let Inspecting {
            record,
            reader,
            findings,
            enforce,
            ..
        } = &mut inspecting;
        let session = results::Session::of(gate.config(), record, &host::Shared, now);
        let mut scan = Scan::new(config, findings, *enforce, session);
        let out = match &chunk {
            Ok(chunk) => reader.feed(&mut scan, chunk, end_of_stream),
            // Unread bytes must not go on as they are: the answer is refused.
            Err(status) => {
                let why = format!("cannot read the answer's body: {status:?}");
                reader.fail(&why)
            }
        };
        findings.elapsed += started.elapsed();
        let replaced = replace_chunk(
            &chunk,
            &out,
            body_size,
            "the answer",
            "toolgate_result_failed",
        );
        if let Err(why) = replaced {
            inspecting.findings.note(why);
            self.finish(inspecting, config);
            return Action::Pause;
        }
        let matches = inspecting.findings.matches();
        if inspecting.reader.finished() {
            self.finish(inspecting, config);
        } else {
            if matches > inspecting.logged_matches {
                // Logged now too: an answer whose end never comes still shows what it carried.
                inspecting.logged_matches = matches;
                let response = results::record(
                    config,
                    &inspecting.reader,
                    &inspecting.findings,
                    inspecting.enforce,
                );
                inspecting.record.response = Some(response);
                log_record(&inspecting.record);
            }
            self.inspecting = Some(inspecting);
        }
        Action::Continue
    }

    /// The answer was read to its end (or refused): its record and counters.
    fn finish(&mut self, mut inspecting: Inspecting, config: &crate::config::Results) {
        let response = results::record(
            config,
            &inspecting.reader,
            &inspecting.findings,
            inspecting.enforce,
        );
        if let Some(error) = response.errors.first() {
            host::log(
                LogLevel::Error,
                &format!("toolgate: on the answer: {error}"),
            );
        }
        self.metrics.result(&response);
        inspecting.record.response = Some(response);
        log_record(&inspecting.record);
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

/// Puts `out`, what the reader made of a response body chunk, in the chunk's place when it
/// differs. A chunk that cannot be replaced must not go on at all: the stream is reset
/// (`details` says why) and the error, for the record, is returned.
fn replace_chunk(
    chunk: &host::HostResult<Vec<u8>>,
    out: &[u8],
    body_size: usize,
    what: &str,
    details: &str,
) -> Result<(), String> {
    if chunk.as_ref().is_ok_and(|chunk| chunk == out) {
        return Ok(());
    }
    let Err(status) = host::set_buffer(BufferType::HttpResponseBody, 0, body_size, out) else {
        return Ok(());
    };
    host::log(
        LogLevel::Error,
        &format!(
            "toolgate: failing closed on {what}: cannot replace its body ({status:?}); resetting"
        ),
    );
    let _ = host::send_response(502, details, &[], &[]);
    Err(format!("cannot replace the answer's body: {status:?}"))
}

/// Sets the record as the filter state the access log prints.
fn log_record(record: &DecisionRecord) {
    let line = record.to_json();
    if let Err(status) = host::set_filter_state(DECISION_LOG_KEY, line.as_bytes()) {
        host::log(
            LogLevel::Error,
            &format!("toolgate: decision log not written ({status:?}): {line}"),
        );
    }
}

/// Answers the client with toolgate's own response.
fn respond_with(action: enforce::Action) -> Action {
    if let enforce::Action::Respond {
        status,
        headers,
        body,
    } = action
    {
        let details = "toolgate_denied";
        if let Err(e) = host::send_response(status, details, &headers, &body) {
            host::log(
                LogLevel::Error,
                &format!("toolgate: cannot send the denial: {e:?}"),
            );
        }
        return Action::Pause;
    }
    Action::Continue
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
        if self
            .declared_length()
            .is_some_and(|length| length > self.body_limit())
        {
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

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // Only a forwarded request's answer is the upstream's: toolgate's own refusals pass.
        match (self.forwarded.take(), self.gate.clone()) {
            (Some(record), Some(gate)) => match self.answered(record, &gate) {
                Ok(record) if crate::a2a_tasks::answers_message(gate.config(), &record) => {
                    self.bind_tasks(record, &gate, end_of_stream)
                }
                Ok(record) => match list_answer::asked(gate.config(), &record) {
                    Some(asked) => self.list(record, asked, &gate, end_of_stream),
                    None => self.inspect(record, &gate, end_of_stream),
                },
                Err(refused) => refused,
            },
            _ => Action::Continue,
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.binding.is_some() {
            return self.bind_chunk(body_size, end_of_stream);
        }
        if self.listing.is_some() {
            return self.list_chunk(body_size, end_of_stream);
        }
        if self.inspecting.is_none() {
            return Action::Continue;
        }
        self.inspect_chunk(body_size, end_of_stream)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        if let Some(mut binding) = self.binding.take() {
            if !binding.reader.finished() {
                let why = "the answer ended with trailers; what was held is dropped";
                binding.reader.fail(why);
                binding.record.errors.push(why.to_owned());
            }
            log_record(&binding.record);
        }
        // Trailers end the body without an end-of-stream body callback; what is still
        // held cannot be sent after them, so it is dropped, never sent on unread.
        if let Some(mut listing) = self.listing.take() {
            if !listing.reader.finished() {
                let why = "the answer ended with trailers; what was held is dropped";
                listing.reader.fail(why);
                listing.outcome.errors.push(why.to_owned());
            }
            self.finish_list(listing);
        }
        if let (Some(mut inspecting), Some(gate)) = (self.inspecting.take(), self.gate.clone()) {
            if let Some(config) = gate.config().results.as_ref() {
                if !inspecting.reader.finished() {
                    inspecting
                        .reader
                        .fail("the answer ended with trailers; what was held is dropped");
                    inspecting.findings.note(
                        "the answer ended with trailers; what was held is dropped".to_owned(),
                    );
                }
                self.finish(inspecting, config);
            }
        }
        Action::Continue
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
