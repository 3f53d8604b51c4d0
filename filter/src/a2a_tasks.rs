//! A2A tasks bound to the agent whose message created them: who may name a task id.
//!
//! When the answer to a forwarded `SendMessage` (or its streaming form) carries a
//! task id, toolgate binds it to the request's principal in Envoy's shared data
//! (per Envoy process, seen by every worker VM) before that part of the answer goes
//! on; if the binding cannot be written, the answer is refused (fails closed). A call
//! that names a task (a task method, or a message continuing or referring to one) is
//! then checked against the binding: the owner goes on; anyone else, and anyone for
//! a task toolgate never saw created, is refused as `task_not_owned` unless policy
//! permits `a2a/SharedTask` for it (see `gate`). Bindings use the session table's
//! shards (`session::Table`) under their own key prefix.

use serde_json::Value;

use crate::a2a::{self, TaskStanding};
use crate::config::{A2aTasks, Config, OverLimit, Sessions};
use crate::reason::Reason;
use crate::record::DecisionRecord;
use crate::response::{Asked, Reader};
use crate::response::{Judged, Processor, Refused};
use crate::session::{self, Bind, Table};
use crate::shared::{SharedData, StateError};

/// Bumped whenever the shard format changes, so an old value is never misread.
const KEY_PREFIX: &str = "toolgate/a2a-tasks/v1";

/// The task table's shape, as the session table's code reads it: a binding lives
/// `ttl_seconds` after its task was created (or last answered to its owner).
pub fn table_config(config: &A2aTasks) -> Sessions {
    Sessions {
        idle_seconds: config.ttl_seconds,
        max_entries: config.max_entries,
        shards: config.shards,
    }
}

fn table(config: &Sessions) -> Table<'_> {
    Table {
        prefix: KEY_PREFIX,
        config,
    }
}

/// Creates the missing shards (see `session::create_shards`).
pub fn create_shards(shared: &dyn SharedData, config: &A2aTasks) -> Result<usize, StateError> {
    session::create_shards_in(shared, table(&table_config(config)))
}

/// Where task `id` stands with `principal` (`None`: no verified identity, which owns
/// nothing). One shared-data read.
pub fn standing(
    shared: &dyn SharedData,
    config: &A2aTasks,
    id: &str,
    principal: Option<&str>,
    now: i64,
) -> Result<TaskStanding, StateError> {
    let sessions = table_config(config);
    let bound = session::lookup(shared, table(&sessions), id, now)?;
    let owner = bound.map(|b| b.owner);
    Ok(TaskStanding {
        id: id.to_owned(),
        owned: owner.is_some() && owner.as_deref() == principal,
        owner,
    })
}

/// Binds task `id` to `owner`.
pub fn bind(
    shared: &dyn SharedData,
    config: &A2aTasks,
    id: &str,
    owner: &str,
    now: i64,
) -> Result<Bind, StateError> {
    session::bind_in(shared, table(&table_config(config)), id, owner, now)
}

/// True for a successful answer to a forwarded A2A message: it may create tasks.
pub fn answers_message(config: &Config, record: &DecisionRecord) -> bool {
    let messaging = matches!(
        record.action.as_deref(),
        Some("a2a/SendMessage" | "a2a/SendStreamingMessage")
    );
    let success = record
        .upstream_status
        .is_some_and(|s| (200..300).contains(&s));
    config.a2a.is_some() && messaging && success && record.a2a.is_some()
}

/// For the answer to a forwarded request: when it answers a message on an A2A route
/// with success, the reader of its body and the owner its tasks are bound to. An
/// unauthenticated caller owns nothing: the tasks it creates stay unbound (refused
/// to everyone who names them).
pub fn binds(
    config: &Config,
    record: &DecisionRecord,
    content_type: Option<&[u8]>,
    content_encoding: Option<&[u8]>,
) -> Option<(Reader, String)> {
    let a2a = config.a2a.as_ref()?;
    let owner = record.principal.clone().filter(|_| record.authenticated)?;
    if !answers_message(config, record) {
        return None;
    }
    let asked = Asked {
        method: record.rpc_method.clone(),
        id: record.rpc_id.clone(),
        resource: record.resource.clone(),
        batch: false,
        decision_id: record.decision_id.clone(),
    };
    let reader = Reader::for_answer(
        asked,
        (a2a.max_buffer_bytes, OverLimit::Refuse),
        config.refusals.tools_call,
        content_type,
        content_encoding,
    );
    Some((reader, owner))
}

/// The task id an answer's message carries, whichever generation and binding:
/// a JSON-RPC response's `result` (v0.3: a Task's `id`, a Message's or update
/// event's `taskId`; v1.0: `{"task": {"id"}}`, `{"message": {"taskId"}}`,
/// `{"statusUpdate"|"artifactUpdate": {"taskId"}}`), or the same without the
/// envelope (HTTP+JSON). An error answer carries none.
pub fn task_id(message: &Value) -> Option<&str> {
    let result = match message.get("jsonrpc") {
        Some(_) => message.get("result")?,
        None => message,
    };
    let wrapped = [
        ("task", "id"),
        ("message", "taskId"),
        ("statusUpdate", "taskId"),
        ("artifactUpdate", "taskId"),
    ];
    for (wrapper, field) in wrapped {
        if let Some(inner) = result.get(wrapper).filter(|v| v.is_object()) {
            return inner.get(field)?.as_str();
        }
    }
    match result.get("kind").and_then(Value::as_str) {
        Some("task") => result.get("id")?.as_str(),
        Some("message" | "status-update" | "artifact-update") => result.get("taskId")?.as_str(),
        _ => None,
    }
}

/// Binds the tasks an answer to a message creates, as a [`Processor`] over its body:
/// each task id seen is bound before the chunk that carries it goes on.
pub struct Binder<'a> {
    pub shared: &'a dyn SharedData,
    pub config: &'a A2aTasks,
    pub owner: &'a str,
    pub now: i64,
    /// Task ids already bound for this answer.
    pub bound: &'a mut Vec<String>,
    /// Seen in this chunk, bound at its release.
    pending: Vec<String>,
}

impl<'a> Binder<'a> {
    pub fn new(
        shared: &'a dyn SharedData,
        config: &'a A2aTasks,
        owner: &'a str,
        now: i64,
        bound: &'a mut Vec<String>,
    ) -> Self {
        Self {
            shared,
            config,
            owner,
            now,
            bound,
            pending: Vec::new(),
        }
    }
}

impl Processor for Binder<'_> {
    fn message(&mut self, message: &mut Value) -> Judged {
        match task_id(message) {
            Some(id) if !a2a::acceptable_id(id) => Judged::Refuse(Refused::internal(
                "the agent answered with a task id toolgate cannot bind (see a2a::acceptable_id)",
            )),
            Some(id) if !self.bound.iter().chain(&self.pending).any(|b| b == id) => {
                self.pending.push(id.to_owned());
                Judged::Keep
            }
            _ => Judged::Keep,
        }
    }

    fn bytes(&mut self, _bytes: &mut Vec<u8>) -> Judged {
        Judged::Keep
    }

    fn release(&mut self) -> Result<(), Refused> {
        for id in std::mem::take(&mut self.pending) {
            match bind(self.shared, self.config, &id, self.owner, self.now) {
                Ok(Bind::Bound { .. }) => self.bound.push(id),
                // The agent answered with another agent's task: not for this caller.
                Ok(Bind::Taken) => {
                    return Err(Refused {
                        error: Some(format!(
                            "the agent answered with task {id:?}, bound to another agent"
                        )),
                        ..Refused::new(Reason::TaskNotOwned)
                    })
                }
                Err(error) => {
                    return Err(Refused::internal(format!(
                        "cannot bind task {id:?} to its owner: {error}"
                    )))
                }
            }
        }
        Ok(())
    }
}
