//! The response side: reads an answer's body (JSON, SSE or other bytes) one message at a time and says what to send on.
//!
//! The [`Reader`] owns the framing: a JSON body is held until it is complete (up to
//! a bound), an SSE stream is cut into events and each complete event is handled
//! on its own, so progress notifications go on as they come; the incomplete tail of
//! an event waits for the next chunk, so nothing split across chunks is missed. What
//! to do with each message is a [`Processor`]'s business (the result detectors in
//! `results`; a list filter can be another), built for each chunk over the state it
//! keeps. Nothing here talks to Envoy: the glue gives chunks and sends on what
//! [`Reader::feed`] returns in their place.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::{OverLimit, ToolsCallRefusal};
use crate::reason::Reason;

/// What the request was: what its answer is read for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Asked {
    /// The JSON-RPC method (`tools/call`), when the request was one call.
    pub method: Option<String>,
    /// The JSON-RPC id the answer carries.
    pub id: Option<Value>,
    /// The resource id (`tools/read_file`).
    pub resource: Option<String>,
    /// The request was a JSON-RPC batch: every answer in it is read.
    pub batch: bool,
    /// The decision the answer belongs to, named in a refusal.
    pub decision_id: String,
}

/// How the body is framed, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    Json,
    Sse,
    /// Anything else: read as bytes, whole.
    Other,
}

impl Framing {
    pub fn of(content_type: Option<&[u8]>) -> Self {
        let essence = content_type
            .and_then(|v| v.split(|&b| b == b';').next())
            .map(|v| v.trim_ascii().to_ascii_lowercase())
            .unwrap_or_default();
        match essence.as_slice() {
            b"text/event-stream" => Self::Sse,
            b"application/json" => Self::Json,
            t if t.starts_with(b"application/") && t.ends_with(b"+json") => Self::Json,
            _ => Self::Other,
        }
    }
}

/// What a processor makes of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    /// Sent on as it came (byte for byte).
    Keep,
    /// Sent on as the processor changed it.
    Changed,
    /// The whole answer is refused: the agent gets an error in its place.
    Refuse(Refused),
}

/// Why an answer was refused, for the agent and the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub reason: Reason,
    /// The detectors (or other checks) that refused it, by name.
    pub by: Vec<String>,
    /// What went wrong, for an internal failure (logged, not sent).
    pub error: Option<String>,
}

impl Refused {
    pub fn new(reason: Reason) -> Self {
        Self {
            reason,
            by: Vec::new(),
            error: None,
        }
    }

    pub fn internal(error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..Self::new(Reason::Internal)
        }
    }
}

/// Looks at each message of an answer and may change or refuse it.
pub trait Processor {
    /// One JSON-RPC message (a response, or a notification on an SSE stream).
    fn message(&mut self, message: &mut Value) -> Judged;
    /// A payload that is not JSON (or not strict JSON), as bytes.
    fn bytes(&mut self, bytes: &mut Vec<u8>) -> Judged;
    /// Called before what a chunk produced is sent on: what must be done before the
    /// agent can see it (recording a tag in its session). An error refuses the answer.
    fn release(&mut self) -> Result<(), Refused>;
}

/// Where the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    /// Past the bound with `over_limit: pass`: the rest goes on uninspected.
    Passing,
    /// Refused: the error was sent; the rest of the upstream's answer is dropped.
    Refused,
    /// The answer ended.
    Done,
}

/// What the reader did, for the record and the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of the upstream's body read.
    pub bytes: u64,
    /// JSON-RPC messages (or non-JSON payloads) handed to the processor.
    pub messages: u64,
    /// Messages sent on changed.
    pub changed: u64,
    /// The bound was passed.
    pub over_limit: bool,
    /// Why the answer was refused, if it was.
    pub refused: Option<Reason>,
    /// By what.
    pub refused_by: Vec<String>,
    /// An internal failure.
    pub error: Option<String>,
}

/// How a refusal is shaped for the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// `refusals.tools_call`: an `isError` tool result instead of a JSON-RPC error.
    pub tools_call: ToolsCallRefusal,
}

/// Reads one answer's body. See the module documentation.
#[derive(Debug)]
pub struct Reader {
    asked: Asked,
    framing: Framing,
    limit: usize,
    over_limit: OverLimit,
    shape: Shape,
    /// The body so far (JSON, other), or the incomplete SSE event.
    pending: Vec<u8>,
    state: State,
    stats: Stats,
    /// The answer came compressed: it cannot be read, so it is refused at the first byte.
    encoded: bool,
}

impl Reader {
    pub fn new(
        asked: Asked,
        framing: Framing,
        limit: usize,
        over_limit: OverLimit,
        shape: Shape,
    ) -> Self {
        Self {
            asked,
            framing,
            limit,
            over_limit,
            shape,
            pending: Vec::new(),
            state: State::Reading,
            stats: Stats::default(),
            encoded: false,
        }
    }

    /// The reader of a forwarded request's answer, framed by its content type, with its
    /// encoding checked (see [`Reader::encoded`]).
    pub fn for_answer(
        asked: Asked,
        (limit, over_limit): (usize, OverLimit),
        tools_call: ToolsCallRefusal,
        content_type: Option<&[u8]>,
        content_encoding: Option<&[u8]>,
    ) -> Self {
        let framing = Framing::of(content_type);
        Self::new(asked, framing, limit, over_limit, Shape { tools_call }).encoded(content_encoding)
    }

    /// The answer carries a `content-encoding` other than `identity`: toolgate asked
    /// the upstream for none (it removes `accept-encoding`), and cannot read it.
    pub fn encoded(mut self, content_encoding: Option<&[u8]>) -> Self {
        self.encoded = content_encoding
            .map(<[u8]>::trim_ascii)
            .is_some_and(|e| !e.is_empty() && !e.eq_ignore_ascii_case(b"identity"));
        self
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn asked(&self) -> &Asked {
        &self.asked
    }

    /// True once the answer has ended or been refused.
    pub fn finished(&self) -> bool {
        matches!(self.state, State::Refused | State::Done)
    }

    /// Takes the next chunk of the body (`end`: the last) and returns what to send in
    /// its place: nothing while a JSON body or an SSE event is incomplete, then the
    /// processed messages, or the refusal.
    pub fn feed(&mut self, processor: &mut dyn Processor, chunk: &[u8], end: bool) -> Vec<u8> {
        self.stats.bytes += chunk.len() as u64;
        match self.state {
            State::Refused | State::Done => return Vec::new(),
            State::Passing => {
                if end {
                    self.state = State::Done;
                }
                return chunk.to_vec();
            }
            State::Reading => {}
        }
        if self.encoded && (!chunk.is_empty() || end) {
            return self.refuse(Refused::new(Reason::UnsupportedEncoding));
        }
        let out = match self.framing {
            Framing::Sse => self.feed_events(processor, chunk, end),
            Framing::Json | Framing::Other => self.feed_whole(processor, chunk, end),
        };
        let out = match out {
            Ok(out) => out,
            Err(refused) => return self.refuse(refused),
        };
        if self.state == State::Reading && end {
            self.state = State::Done;
        }
        match processor.release() {
            Ok(()) => out,
            Err(refused) => self.refuse(refused),
        }
    }

    /// A JSON (or other) body: held whole, then handled at its end.
    fn feed_whole(
        &mut self,
        processor: &mut dyn Processor,
        chunk: &[u8],
        end: bool,
    ) -> Result<Vec<u8>, Refused> {
        if self.pending.len() + chunk.len() > self.limit {
            self.over_limit()?;
            let mut out = std::mem::take(&mut self.pending);
            out.extend_from_slice(chunk);
            return Ok(out);
        }
        self.pending.extend_from_slice(chunk);
        if !end {
            return Ok(Vec::new());
        }
        let body = std::mem::take(&mut self.pending);
        if body.is_empty() {
            return Ok(body);
        }
        match self.framing {
            Framing::Json => self.json(processor, body),
            _ => self.raw(processor, body),
        }
    }

    /// Past the bound: refused, or (configured so) what is held and the rest go on uninspected.
    fn over_limit(&mut self) -> Result<(), Refused> {
        self.stats.over_limit = true;
        match self.over_limit {
            OverLimit::Refuse => Err(Refused::new(Reason::ResultTooLarge)),
            OverLimit::Pass => {
                self.state = State::Passing;
                Ok(())
            }
        }
    }

    /// A whole JSON body: one message or a batch of them. A body that is not strict
    /// JSON (invalid, not UTF-8, a repeated key) is read as bytes: whatever the
    /// agent's parser makes of it, nothing in it goes unseen.
    fn json(&mut self, processor: &mut dyn Processor, body: Vec<u8>) -> Result<Vec<u8>, Refused> {
        let Ok(mut value) = crate::json::parse(&body) else {
            return self.raw(processor, body);
        };
        let changed = match &mut value {
            Value::Array(messages) => {
                let mut changed = false;
                for message in messages.iter_mut() {
                    changed |= self.judge(processor, message)?;
                }
                changed
            }
            message => self.judge(processor, message)?,
        };
        if !changed {
            return Ok(body);
        }
        serde_json::to_vec(&value).map_err(|e| Refused::internal(format!("re-encoding: {e}")))
    }

    fn judge(
        &mut self,
        processor: &mut dyn Processor,
        message: &mut Value,
    ) -> Result<bool, Refused> {
        self.stats.messages += 1;
        match processor.message(message) {
            Judged::Keep => Ok(false),
            Judged::Changed => {
                self.stats.changed += 1;
                Ok(true)
            }
            Judged::Refuse(refused) => Err(refused),
        }
    }

    fn raw(
        &mut self,
        processor: &mut dyn Processor,
        mut body: Vec<u8>,
    ) -> Result<Vec<u8>, Refused> {
        self.stats.messages += 1;
        match processor.bytes(&mut body) {
            Judged::Keep => Ok(body),
            Judged::Changed => {
                self.stats.changed += 1;
                Ok(body)
            }
            Judged::Refuse(refused) => Err(refused),
        }
    }

    /// An SSE stream: each complete event is handled and sent on; the incomplete
    /// tail waits (up to the bound) for the rest of it.
    fn feed_events(
        &mut self,
        processor: &mut dyn Processor,
        chunk: &[u8],
        end: bool,
    ) -> Result<Vec<u8>, Refused> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        while self.state == State::Reading {
            let rest = self.pending.get(start..).unwrap_or_default();
            let Some(length) = event_length(rest, end) else {
                break;
            };
            let event = rest.get(..length).unwrap_or_default().to_vec();
            start += length;
            // An error drops what this chunk already produced too: the refusal replaces it.
            self.event(processor, &event, &mut out)?;
        }
        let tail = self.pending.split_off(start.min(self.pending.len()));
        self.pending = tail;
        if self.state == State::Reading && end && !self.pending.is_empty() {
            // A last event without its blank line: handled as it is.
            let event = std::mem::take(&mut self.pending);
            self.event(processor, &event, &mut out)?;
        }
        if self.state == State::Reading && self.pending.len() > self.limit {
            self.over_limit()?;
        }
        if self.state == State::Passing {
            out.append(&mut self.pending);
        }
        Ok(out)
    }

    /// One event: its `data` lines are a JSON-RPC message (or, not JSON, bytes).
    fn event(
        &mut self,
        processor: &mut dyn Processor,
        event: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Refused> {
        if event.len() > self.limit {
            self.over_limit()?;
            out.extend_from_slice(event);
            return Ok(());
        }
        let Some(data) = event_data(event) else {
            // A comment, a retry, a keep-alive: nothing an agent reads.
            out.extend_from_slice(event);
            return Ok(());
        };
        let changed = match crate::json::parse(&data) {
            Ok(mut message) => {
                let changed = match &mut message {
                    Value::Array(messages) => {
                        let mut changed = false;
                        for m in messages.iter_mut() {
                            changed |= self.judge(processor, m)?;
                        }
                        changed
                    }
                    m => self.judge(processor, m)?,
                };
                changed
                    .then(|| serde_json::to_vec(&message))
                    .transpose()
                    .map_err(|e| Refused::internal(format!("re-encoding: {e}")))?
            }
            Err(_) => {
                let mut bytes = data.into_owned();
                self.stats.messages += 1;
                match processor.bytes(&mut bytes) {
                    Judged::Keep => None,
                    Judged::Changed => {
                        self.stats.changed += 1;
                        Some(bytes)
                    }
                    Judged::Refuse(refused) => return Err(refused),
                }
            }
        };
        match changed {
            None => out.extend_from_slice(event),
            Some(data) => rewrite_event(event, &data, out),
        }
        Ok(())
    }

    /// toolgate's own failure (the glue could not read a chunk): the answer is refused.
    pub fn fail(&mut self, error: &str) -> Vec<u8> {
        if self.finished() {
            return Vec::new();
        }
        self.refuse(Refused::internal(error))
    }

    /// Refuses the answer: the error goes out in place of what was held, and the
    /// rest of the upstream's answer is dropped.
    fn refuse(&mut self, refused: Refused) -> Vec<u8> {
        self.state = State::Refused;
        self.pending = Vec::new();
        self.stats.refused = Some(refused.reason);
        self.stats.refused_by = refused.by.clone();
        self.stats.error = refused.error.clone();
        let message = refusal(&self.asked, &refused, self.shape);
        let body = serde_json::to_vec(&message).unwrap_or_default();
        match self.framing {
            Framing::Sse => {
                let mut out = b"event: message\ndata: ".to_vec();
                out.extend_from_slice(&body);
                out.extend_from_slice(b"\n\n");
                out
            }
            Framing::Json | Framing::Other => body,
        }
    }
}

/// The agent's error for a refused answer: a JSON-RPC error for the request's id
/// (or, with `refusals.tools_call: result`, a tool result with `isError`).
pub fn refusal(asked: &Asked, refused: &Refused, shape: Shape) -> Value {
    let reason = refused.reason;
    let data = json!({
        "decision_id": asked.decision_id,
        "reason": reason.code(),
        "detectors": refused.by,
    });
    let message = format!("toolgate: {}", reason.message());
    let id = asked.id.clone().unwrap_or(Value::Null);
    let tool_result = shape.tools_call == ToolsCallRefusal::Result
        && asked.method.as_deref() == Some("tools/call")
        && reason.is_policy_decision();
    if tool_result {
        let text = format!(
            "toolgate withheld this result: {} (reason {}, decision {}).",
            reason.message(),
            reason.code(),
            asked.decision_id
        );
        return json!({
            "jsonrpc": "2.0",
            "id": id,
            "result": {
                "content": [{ "type": "text", "text": text }],
                "isError": true,
                "_meta": { "toolgate": data },
            },
        });
    }
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": reason.jsonrpc_code(), "message": message, "data": data },
    })
}

/// The length of the first complete event in `bytes` (through the blank line that
/// ends it), if there is one. A lone `\r` at the very end may be half of `\r\n`, so
/// it waits for the next chunk unless the stream ended.
fn event_length(bytes: &[u8], end: bool) -> Option<usize> {
    let mut at = 0;
    let mut line_start = 0;
    while at < bytes.len() {
        let b = bytes.get(at).copied().unwrap_or(0);
        let eol = match b {
            b'\n' => 1,
            b'\r' if bytes.get(at + 1) == Some(&b'\n') => 2,
            b'\r' if at + 1 == bytes.len() && !end => return None,
            b'\r' => 1,
            _ => {
                at += 1;
                continue;
            }
        };
        if at == line_start {
            return Some(at + eol);
        }
        at += eol;
        line_start = at;
    }
    None
}

/// The lines of an event, without their ends.
fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = event;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|&b| b == b'\n' || b == b'\r');
        let (line, next) = match end {
            None => (rest, &[][..]),
            Some(at) => {
                let eol = if rest.get(at..at + 2) == Some(b"\r\n") {
                    2
                } else {
                    1
                };
                (
                    rest.get(..at).unwrap_or_default(),
                    rest.get(at + eol..).unwrap_or_default(),
                )
            }
        };
        rest = next;
        Some(line)
    })
}

/// A line's field name and value (`data: x` is `data`, `x`).
fn field(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b':') {
        None => (line, &[]),
        Some(at) => {
            let value = line.get(at + 1..).unwrap_or_default();
            let value = value.strip_prefix(b" ").unwrap_or(value);
            (line.get(..at).unwrap_or_default(), value)
        }
    }
}

/// The event's data: its `data` lines joined with `\n`; `None` when it has none.
fn event_data(event: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut data: Option<Cow<'_, [u8]>> = None;
    for line in lines(event) {
        let (name, value) = field(line);
        if name != b"data" || line.is_empty() {
            continue;
        }
        data = Some(match data {
            None => Cow::Borrowed(value),
            Some(joined) => {
                let mut joined = joined.into_owned();
                joined.push(b'\n');
                joined.extend_from_slice(value);
                Cow::Owned(joined)
            }
        });
    }
    data
}

/// The event with its data replaced: its other fields kept in order, the new data
/// where the first `data` line was (one `data` line per line of it).
fn rewrite_event(event: &[u8], data: &[u8], out: &mut Vec<u8>) {
    let mut written = false;
    for line in lines(event) {
        if line.is_empty() {
            continue;
        }
        if field(line).0 == b"data" {
            if !written {
                for part in data.split(|&b| b == b'\n') {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(part.strip_suffix(b"\r").unwrap_or(part));
                    out.push(b'\n');
                }
                written = true;
            }
            continue;
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}
