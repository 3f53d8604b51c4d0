//! Results that feed the session: detectors on what tools, resources and prompts return, and their effects.
//!
//! The answer to an allowed `tools/call`, `resources/read` or `prompts/get` is read
//! (by `response::Reader`) before the agent gets it, and every string in it (keys
//! too, after JSON unescaping, so `\u0041KIA...` is seen as `AKIA...`) goes through
//! the configured detectors. A match's effect is its detector's: `record` its tag
//! into the agent's session history (written before the chunk that carried it is
//! sent on, so the agent's next call is decided knowing it), `redact` it, or
//! `refuse` the answer. Nothing of a match ever reaches the log: only counts.

use std::ops::Range;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::action::Action;
use crate::call::Call;
use crate::config::{Config, Effect, History, Pattern, Results};
use crate::detect;
use crate::history;
use crate::reason::Reason;
use crate::record::{DecisionRecord, Detection, ResponseRecord, ResultEffect};
use crate::response::{Asked, Judged, Processor, Reader, Refused};
use crate::shared::SharedData;

/// The actions whose answers carry what a tool, resource or prompt returned.
const INSPECTED: &[Action] = &[Action::ToolsCall, Action::ResourcesRead, Action::PromptsGet];

/// True when the answers to these calls will be read: `results` is configured and
/// one of them returns content. The request then goes upstream without
/// `accept-encoding`, so that the answer comes back readable.
pub fn reads_answers(config: &Config, calls: &[Call]) -> bool {
    config.results.is_some() && calls.iter().any(|c| INSPECTED.contains(&c.action))
}

/// What a forwarded request asked, when its answer is to be read (a batch: all of it).
pub fn asked(config: &Config, record: &DecisionRecord) -> Option<Asked> {
    config.results.as_ref()?;
    let inspected = record
        .action
        .as_deref()
        .is_some_and(|id| INSPECTED.iter().any(|a| a.id() == id));
    (inspected || record.batch_size > 1).then(|| Asked {
        method: record.rpc_method.clone(),
        id: record.rpc_id.clone(),
        resource: record.resource.clone(),
        batch: record.batch_size > 1,
        decision_id: record.decision_id.clone(),
    })
}

/// The reader for a forwarded request's answer, from its content type and encoding.
pub fn reader(
    config: &Config,
    asked: Asked,
    content_type: Option<&[u8]>,
    content_encoding: Option<&[u8]>,
) -> Option<Reader> {
    let results = config.results.as_ref()?;
    Some(Reader::for_answer(
        asked,
        (results.max_buffer_bytes, results.over_limit),
        config.refusals.tools_call,
        content_type,
        content_encoding,
    ))
}

/// What the detectors found in one answer so far (owned by the glue between chunks).
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// Matches per configured detector, by index.
    counts: Vec<u64>,
    /// Tags found and not yet written to the session.
    to_record: Vec<String>,
    /// Tags written to the session.
    recorded: Vec<String>,
    /// Matches replaced (in shadow mode: that would have been).
    redacted: u64,
    /// Shadow mode: a `refuse` detector matched.
    would_refuse: bool,
    errors: Vec<String>,
    /// Time spent reading, all chunks together.
    pub elapsed: Duration,
}

impl Findings {
    /// Tags written to the session so far.
    pub fn recorded(&self) -> &[String] {
        &self.recorded
    }

    /// Notes a failure for the record's `errors`.
    pub fn note(&mut self, error: String) {
        self.errors.push(error);
    }

    /// Matches of every detector so far.
    pub fn matches(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Where recorded tags go: the agent's session in history.
#[derive(Clone, Copy)]
pub struct Session<'a> {
    pub history: &'a History,
    pub shared: &'a dyn SharedData,
    pub agent: &'a str,
    pub session: &'a str,
    pub now: i64,
}

impl<'a> Session<'a> {
    /// The session a forwarded request was decided in (as `Gate` chose it: the
    /// verified token's task, else the declared session), when history is kept.
    pub fn of(
        config: &'a Config,
        record: &'a DecisionRecord,
        shared: &'a dyn SharedData,
        now: i64,
    ) -> Option<Self> {
        let history = config.history.as_ref()?;
        let agent = record
            .principal
            .as_deref()
            .filter(|_| record.authenticated)?;
        let task = record.token.as_ref().and_then(|t| t.task.as_deref());
        let session = history::session_id(task, record.session.as_deref());
        Some(Self {
            history,
            shared,
            agent,
            session,
            now,
        })
    }
}

/// The detectors as a [`Processor`], over one answer's [`Findings`].
pub struct Scan<'a> {
    config: &'a Results,
    findings: &'a mut Findings,
    /// False in shadow mode: matches are counted and tags recorded, nothing is changed or refused.
    enforce: bool,
    session: Option<Session<'a>>,
    /// Reused between texts.
    ranges: Vec<Range<usize>>,
}

impl<'a> Scan<'a> {
    pub fn new(
        config: &'a Results,
        findings: &'a mut Findings,
        enforce: bool,
        session: Option<Session<'a>>,
    ) -> Self {
        if findings.counts.len() != config.detectors.len() {
            findings.counts = vec![0; config.detectors.len()];
        }
        Self {
            config,
            findings,
            enforce,
            session,
            ranges: Vec::new(),
        }
    }

    /// Runs every detector over `text`; returns what to redact (range and detector)
    /// and, when a `refuse` detector matched, its name.
    fn scan(&mut self, text: &[u8], refuse: &mut Vec<String>) -> Vec<(Range<usize>, usize)> {
        let mut redact = Vec::new();
        for (index, detector) in self.config.detectors.iter().enumerate() {
            self.ranges.clear();
            match (&detector.builtin, &detector.regex) {
                (Some(builtin), _) => builtin.find(text, &mut self.ranges),
                (None, Some(Pattern(regex))) => {
                    self.ranges.extend(regex.find_iter(text).map(|m| m.range()))
                }
                (None, None) => {}
            }
            if self.ranges.is_empty() {
                continue;
            }
            if let Some(count) = self.findings.counts.get_mut(index) {
                *count += self.ranges.len() as u64;
            }
            match detector.effect {
                Effect::Record => {
                    let tag = &detector.tag;
                    let known = self.findings.recorded.contains(tag)
                        || self.findings.to_record.contains(tag);
                    if !known {
                        self.findings.to_record.push(tag.clone());
                    }
                }
                Effect::Redact => {
                    redact.extend(self.ranges.drain(..).map(|r| (r, index)));
                }
                Effect::Refuse => {
                    let name = detector.label().to_owned();
                    if !refuse.contains(&name) {
                        refuse.push(name);
                    }
                }
            }
        }
        redact
    }

    /// `text` with the ranges replaced by `[redacted:<detector>]`.
    fn redacted(&mut self, text: &[u8], mut ranges: Vec<(Range<usize>, usize)>) -> Vec<u8> {
        detect::merge(&mut ranges);
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for (range, index) in ranges {
            out.extend_from_slice(text.get(at..range.start).unwrap_or_default());
            let name = self
                .config
                .detectors
                .get(index)
                .map_or("secret", |d| d.label());
            out.extend_from_slice(format!("[redacted:{name}]").as_bytes());
            self.findings.redacted += 1;
            at = range.end;
        }
        out.extend_from_slice(text.get(at..).unwrap_or_default());
        out
    }

    /// A string, scanned and maybe redacted; true when it changed.
    fn string(&mut self, text: &mut String, refuse: &mut Vec<String>) -> bool {
        let ranges = self.scan(text.as_bytes(), refuse);
        if ranges.is_empty() {
            return false;
        }
        let out = self.redacted(text.as_bytes(), ranges);
        // The matchers cut at ASCII bytes; a configured regex may not: never invalid UTF-8.
        *text = String::from_utf8_lossy(&out).into_owned();
        true
    }

    /// Every string of a JSON value, keys included; true when one changed.
    fn walk(&mut self, value: &mut Value, refuse: &mut Vec<String>) -> bool {
        match value {
            Value::String(text) => self.string(text, refuse),
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= self.walk(item, refuse);
                }
                changed
            }
            Value::Object(members) => {
                let mut changed = false;
                let mut renamed = false;
                let old = std::mem::take(members);
                let mut new = Map::new();
                for (mut key, mut member) in old {
                    renamed |= self.string(&mut key, refuse);
                    changed |= self.walk(&mut member, refuse);
                    new.insert(key, member);
                }
                *members = new;
                changed || renamed
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }

    /// What becomes of a message; in shadow mode, nothing (what would have is noted).
    fn judged(&mut self, changed: bool, refuse: Vec<String>) -> Judged {
        if !self.enforce {
            self.findings.would_refuse |= !refuse.is_empty();
            return Judged::Keep;
        }
        if !refuse.is_empty() {
            return Judged::Refuse(Refused {
                by: refuse,
                ..Refused::new(Reason::ResultRefused)
            });
        }
        if changed {
            Judged::Changed
        } else {
            Judged::Keep
        }
    }
}

impl Processor for Scan<'_> {
    fn message(&mut self, message: &mut Value) -> Judged {
        let mut refuse = Vec::new();
        let changed = if self.enforce {
            self.walk(message, &mut refuse)
        } else {
            // Shadow mode redacts a copy, to log what it would have done.
            self.walk(&mut message.clone(), &mut refuse)
        };
        self.judged(changed, refuse)
    }

    fn bytes(&mut self, bytes: &mut Vec<u8>) -> Judged {
        let mut refuse = Vec::new();
        let ranges = self.scan(bytes, &mut refuse);
        let changed = !ranges.is_empty();
        if changed {
            let redacted = self.redacted(bytes, ranges);
            if self.enforce {
                *bytes = redacted;
            }
        }
        self.judged(changed, refuse)
    }

    /// Writes the tags found to the session before the agent can see what carried them.
    fn release(&mut self) -> Result<(), Refused> {
        if self.findings.to_record.is_empty() {
            return Ok(());
        }
        let tags = std::mem::take(&mut self.findings.to_record);
        let written = match &self.session {
            Some(s) => history::add_tags(s.shared, s.history, s.agent, s.session, &tags, s.now)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("no session history to record the result's tags in".to_owned()),
        };
        match written {
            Ok(()) => {
                self.findings.recorded.extend(tags);
                Ok(())
            }
            Err(error) => {
                self.findings.errors.push(error.clone());
                // In shadow mode nothing is refused, not even on toolgate's own failure.
                if self.enforce {
                    Err(Refused::internal(error))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// The record's `response` block for what the reader and the detectors did.
pub fn record(
    config: &Results,
    reader: &Reader,
    findings: &Findings,
    enforced: bool,
) -> ResponseRecord {
    let stats = reader.stats();
    let detections = config
        .detectors
        .iter()
        .zip(&findings.counts)
        .filter(|(_, &count)| count > 0)
        .map(|(detector, &count)| Detection {
            detector: detector.label().to_owned(),
            tag: detector.tag.clone(),
            effect: detector.effect,
            count,
        })
        .collect();
    let effect = if stats.refused.is_some() || findings.would_refuse {
        ResultEffect::Refused
    } else if findings.redacted > 0 {
        ResultEffect::Redacted
    } else if !findings.recorded.is_empty() {
        ResultEffect::Recorded
    } else {
        ResultEffect::Passed
    };
    let mut errors = findings.errors.clone();
    errors.extend(stats.error.clone());
    errors.dedup();
    ResponseRecord {
        framing: Some(reader.framing()),
        bytes: stats.bytes,
        messages: stats.messages,
        detections,
        effect,
        enforced,
        recorded_tags: findings.recorded.clone(),
        reason: stats.refused,
        over_limit: stats.over_limit,
        errors,
        inspect_us: findings.elapsed.as_micros() as u64,
    }
}
