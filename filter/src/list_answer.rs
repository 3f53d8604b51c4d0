//! Lists filtered on the response side: the answer to an allowed `tools/list` (or prompts, resources, templates) rewritten to what the agent may use.
//!
//! The glue reads the answer with `response::Reader` (JSON bodies whole, SSE event by
//! event) and hands each JSON-RPC message to a [`ListFilter`]. The message that answers
//! the list request (its id, a `result` holding the items) is filtered with
//! `Gate::filter_list` (given as a closure, so that the glue gathers the request's facts
//! only when a list actually arrives): hidden items are taken out, the kept items get
//! their conditions in `_meta` (mode `conditions`), and a result for a 2026-07-28 (or
//! later) request is marked `cacheScope: "private"`, since it is this agent's view.
//! Everything else (progress, `notifications/*/list_changed`, other messages) passes
//! untouched; `nextCursor` stays the server's, as each page is filtered on its own.
//! Shadow mode filters, logs, and changes nothing. A refusal of the filtering itself
//! (identity, revocation, toolgate's own failure) hides every item: fail closed.

use std::time::Duration;

use serde_json::Value;

use crate::config::{Config, Enforcement, ListMode};
use crate::listing::{Filtered, ListMethod};
use crate::mirror;
use crate::record::{Decision, DecisionRecord, HiddenItem, ListRecord};
use crate::refusal::Refusal;
use crate::response::{Asked, Framing, Judged, Processor, Reader, Refused, Shape};

/// What a forwarded list request's answer is read for.
#[derive(Debug, Clone, PartialEq)]
pub struct ListAsked {
    pub method: ListMethod,
    pub mode: ListMode,
    /// Shadow mode (or the list request itself was let through unenforced): log only.
    pub shadow: bool,
    /// The request's protocol version: 2026-07-28 and later get `cacheScope`.
    pub protocol_version: Option<String>,
    pub asked: Asked,
}

/// The list request's answer is to be filtered: a single (not batched) list request,
/// forwarded, on a route or server whose list mode is not `off`.
pub fn asked(config: &Config, record: &DecisionRecord) -> Option<ListAsked> {
    if record.batch_size > 1 {
        return None;
    }
    let method = ListMethod::from_method(record.rpc_method.as_deref()?)?;
    let mode = config.list_mode(record.route.as_deref(), record.server.as_deref());
    if mode == ListMode::Off {
        return None;
    }
    Some(ListAsked {
        method,
        mode,
        shadow: record.mode == Enforcement::Shadow
            || !record.enforced
            || record.decision != Decision::Allow,
        protocol_version: record.protocol_version.clone(),
        asked: Asked {
            method: record.rpc_method.clone(),
            id: record.rpc_id.clone(),
            resource: record.resource.clone(),
            batch: false,
            decision_id: record.decision_id.clone(),
        },
    })
}

/// True when a request with these calls gets its answer read for list filtering (it
/// then goes upstream without `accept-encoding`).
pub fn reads_answers(config: &Config, calls: &[crate::call::Call]) -> bool {
    use crate::action::Action;
    const LISTS: &[Action] = &[
        Action::ToolsList,
        Action::PromptsList,
        Action::ResourcesList,
        Action::ResourceTemplatesList,
    ];
    config.lists_on() && calls.iter().any(|c| LISTS.contains(&c.action))
}

/// The reader for a list answer: bounded by `lists.max_buffer_bytes`, refused past it.
pub fn reader(
    config: &Config,
    asked: &ListAsked,
    content_type: Option<&[u8]>,
    content_encoding: Option<&[u8]>,
) -> Reader {
    let shape = Shape {
        tools_call: config.refusals.tools_call,
    };
    Reader::new(
        asked.asked.clone(),
        Framing::of(content_type),
        config.lists.max_buffer_bytes,
        crate::config::OverLimit::Refuse,
        shape,
    )
    .encoded(content_encoding)
}

/// What the filter did so far (owned by the glue between chunks).
#[derive(Debug, Clone, Default)]
pub struct ListOutcome {
    /// The list result's items, as the server sent them.
    pub items: usize,
    /// The filter's answer, when a list result was seen.
    pub filtered: Option<Filtered>,
    /// The filtering was refused: every item hidden.
    pub refusal: Option<(Refusal, Vec<String>)>,
    pub cache_scope: Option<String>,
    pub errors: Vec<String>,
    pub elapsed: Duration,
}

/// Filters a list's items: `Gate::filter_list` with the list request's facts.
pub type FilterFn<'f> = dyn FnMut(ListMethod, &[Value]) -> Result<Filtered, Refusal> + 'f;

/// The list filter as a [`Processor`].
pub struct ListFilter<'a, 'f> {
    asked: &'a ListAsked,
    outcome: &'a mut ListOutcome,
    filter: &'a mut FilterFn<'f>,
}

impl<'a, 'f> ListFilter<'a, 'f> {
    pub fn new(
        asked: &'a ListAsked,
        outcome: &'a mut ListOutcome,
        filter: &'a mut FilterFn<'f>,
    ) -> Self {
        Self {
            asked,
            outcome,
            filter,
        }
    }

    /// The answer to the list request: the message with its id and a `result`.
    fn is_answer(&self, message: &Value) -> bool {
        let id = message.get("id");
        id.is_some() && id == self.asked.asked.id.as_ref() && message.get("result").is_some()
    }
}

impl Processor for ListFilter<'_, '_> {
    fn message(&mut self, message: &mut Value) -> Judged {
        if !self.is_answer(message) {
            // Progress, list_changed notifications, errors: untouched.
            return Judged::Keep;
        }
        let method = self.asked.method;
        let Some(Value::Object(result)) = message.get_mut("result") else {
            return Judged::Keep;
        };
        let Some(Value::Array(items)) = result.get_mut(method.items_key()) else {
            // A result without its list is not a list: nothing in it to hide.
            self.outcome.errors.push(format!(
                "the {} result has no `{}` list",
                method.method(),
                method.items_key()
            ));
            return Judged::Keep;
        };
        self.outcome.items = items.len();
        let filtered = (self.filter)(method, items);
        let filtered = match filtered {
            Ok(filtered) => filtered,
            Err(refusal) => {
                let names = items.iter().map(|item| item_name(method, item)).collect();
                self.outcome.refusal = Some((refusal, names));
                if self.asked.shadow {
                    return Judged::Keep;
                }
                items.clear();
                self.private(result);
                return Judged::Changed;
            }
        };
        let changed = !filtered.hidden.is_empty()
            || (self.asked.mode == ListMode::Conditions
                && filtered.kept.iter().any(|k| k.conditions.is_some()));
        if self.asked.shadow {
            self.outcome.filtered = Some(filtered);
            return Judged::Keep;
        }
        let sent = std::mem::take(items);
        *items = match self.asked.mode {
            ListMode::Conditions => filtered.rewrite(sent),
            ListMode::Filter | ListMode::Off => {
                let mut plain = filtered.clone();
                plain.kept.iter_mut().for_each(|k| k.conditions = None);
                plain.rewrite(sent)
            }
        };
        self.outcome.filtered = Some(filtered);
        // Any filtered result is this agent's view, changed or not.
        let scoped = self.private(result);
        if changed || scoped {
            Judged::Changed
        } else {
            Judged::Keep
        }
    }

    fn bytes(&mut self, bytes: &mut Vec<u8>) -> Judged {
        // Not strict JSON (invalid, a repeated key, not UTF-8): the agent's parser might
        // still read a list out of it, unfiltered. Fail closed, unless only logging.
        if self.asked.shadow || bytes.trim_ascii().is_empty() {
            return Judged::Keep;
        }
        Judged::Refuse(Refused::internal(format!(
            "the {} answer is not strict JSON: it cannot be filtered",
            self.asked.method.method()
        )))
    }

    fn release(&mut self) -> Result<(), Refused> {
        Ok(())
    }
}

impl ListFilter<'_, '_> {
    /// Marks the result `cacheScope: "private"` for a 2026-07-28 (or later) request.
    fn private(&mut self, result: &mut serde_json::Map<String, Value>) -> bool {
        if !mirror::mirrors(self.asked.protocol_version.as_deref()) {
            return false;
        }
        let private = Value::String("private".into());
        self.outcome.cache_scope = Some("private".into());
        if result.get("cacheScope") == Some(&private) {
            return false;
        }
        result.insert("cacheScope".into(), private);
        true
    }
}

/// An item's name (or URI) for the log.
fn item_name(method: ListMethod, item: &Value) -> String {
    item.get(method.name_key())
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The record's `list` block for what was read so far.
pub fn record(asked: &ListAsked, reader: &Reader, outcome: &ListOutcome) -> ListRecord {
    let stats = reader.stats();
    let mut errors = outcome.errors.clone();
    errors.extend(stats.error.clone());
    let mut record = ListRecord {
        method: asked.method.method().to_owned(),
        mode: Some(asked.mode),
        items: outcome.items,
        shadow: asked.shadow,
        refused: stats.refused,
        cache_scope: outcome.cache_scope.clone(),
        filter_us: u64::try_from(outcome.elapsed.as_micros()).unwrap_or(u64::MAX),
        ..ListRecord::default()
    };
    if let Some((refusal, names)) = &outcome.refusal {
        record.refused = Some(refusal.reason);
        errors.extend(refusal.errors.iter().cloned());
        record.hidden = names
            .iter()
            .map(|name| HiddenItem {
                name: name.clone(),
                reason: refusal.reason,
                policies: refusal.policies.clone(),
            })
            .collect();
        record.listed = if asked.shadow { outcome.items } else { 0 };
    } else if let Some(filtered) = &outcome.filtered {
        record.listed = filtered.kept.len();
        record.conditions = filtered
            .kept
            .iter()
            .filter(|k| k.conditions.is_some())
            .count();
        record.hidden = filtered
            .hidden
            .iter()
            .map(|h| HiddenItem {
                name: h.name.clone(),
                reason: h.reason,
                policies: h.policies.clone(),
            })
            .collect();
    } else {
        record.unfiltered = stats.refused.is_none();
    }
    errors.dedup();
    record.errors = errors;
    record
}
