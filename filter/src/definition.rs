//! Pinned tool definitions: each tool definition seen in a `tools/list` result is digested and compared with the catalog's reviewed pin.
//!
//! The digest is SHA-256 over the canonical JSON of exactly the fields an agent's model
//! reads ([`FIELDS`], absent ones left out): the same function for the CLI that pins
//! and the filter that checks. A catalog `Tool` pins it as `definition_digest`.
//! What a list showed is kept in Envoy's shared data, one entry per pinned tool
//! (`toolgate/definitions/v1/<server>/<tool>`), so every worker of one Envoy process
//! sees it; a definition that ever differed from its pin stays `changed` until the
//! catalog pins another digest (a rug pull that is reverted was still a rug pull).
//! Policies read the state as `context.tool_definition` on `tools/call`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cedar_value::{CedarValue, Pair};
use crate::policy::PolicyStore;
use crate::shared::{self, Json, SharedData, StateError, Stored};

/// The fields of a tool definition that are digested: what the agent's model reads.
pub const FIELDS: [&str; 6] = [
    "name",
    "title",
    "description",
    "inputSchema",
    "outputSchema",
    "annotations",
];

/// Bumped whenever the entry format changes, so an old value is never misread.
const KEY_PREFIX: &str = "toolgate/definitions/v1";

/// Times a write lost to another worker is done again before failing.
const MAX_CONFLICTS: u32 = 8;

/// The digest of one tool definition (an item of a `tools/list` result): `sha256:<hex>`
/// of the canonical JSON of its [`FIELDS`] (and of any key equal to one of them ignoring
/// case). A definition that is not an object, or
/// whose `name` is not a string, has none.
pub fn digest(tool: &Value) -> Result<String, String> {
    let Value::Object(fields) = tool else {
        return Err("a tool definition is not a JSON object".to_owned());
    };
    if !fields.get("name").is_some_and(Value::is_string) {
        return Err("a tool definition has no string `name`".to_owned());
    }
    // A key equal to one of the fields ignoring case (`DESCRIPTION`, `deſcription`) is
    // digested too, as sent: a client that matches keys that way (Go's encoding/json)
    // could read it instead of the field.
    let digested: Map<String, Value> = fields
        .iter()
        .filter(|(key, _)| FIELDS.iter().any(|field| crate::json::fold_eq(key, field)))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    Ok(crate::digest::json_sha256(&Value::Object(digested)))
}

/// True for a digest as toolgate writes it: `sha256:` and 64 lowercase hex digits.
/// Anything else in a catalog is refused at configuration time: an upper-case or
/// shortened digest would never match, and read as a change on every call.
pub fn is_digest(text: &str) -> bool {
    crate::digest::is_sha256(text)
}

/// Where a tool's definition stands, as `context.tool_definition` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Pinned, seen in a list by this Envoy process, and every definition seen matched.
    Pinned,
    /// Pinned, and a list showed a definition with another digest (sticky until re-pinned).
    Changed,
    /// The catalog pins no digest for this tool (or has no such tool).
    Unpinned,
    /// Pinned, but this Envoy process has not seen a list with it since the pin.
    Unseen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pinned => "pinned",
            Self::Changed => "changed",
            Self::Unpinned => "unpinned",
            Self::Unseen => "unseen",
        }
    }
}

/// A tool's definition state with the digests behind it: the record's `tool_definition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    pub state: State,
    /// The catalog's reviewed digest.
    pub pinned: Option<String>,
    /// The digest last seen in a list (for `changed`: the first one that differed).
    pub seen: Option<String>,
}

impl Definition {
    /// `context.tool_definition`.
    pub fn context(&self) -> Pair {
        let state = CedarValue::string(self.state.as_str());
        ("tool_definition".into(), state)
    }
}

/// One pinned tool's entry as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seen {
    /// The pin the entry was made against; another pin starts the entry afresh.
    pub pin: String,
    /// The digest last seen, or the first that differed from `pin`.
    pub seen: String,
    pub changed: bool,
}

type EntryCodec = Json<Seen>;

/// The shared-data key of a tool's entry (`tool_id` is `<server>/<tool>`).
pub fn key(tool_id: &str) -> String {
    format!("{KEY_PREFIX}/{tool_id}")
}

/// Creates the pinned tools' missing entries (empty), so that two workers recording
/// one tool's first list cannot both "win" the compare-and-swap (Envoy creates a
/// missing key whatever version is asked for).
pub fn create_entries(shared: &dyn SharedData, store: &PolicyStore) -> Result<usize, StateError> {
    let mut created = 0;
    for tool_id in store.pinned_tools() {
        let entry = Stored::<EntryCodec>::new(key(tool_id));
        if entry.load(shared)?.is_none() {
            entry.write(shared, &Seen::default(), 0)?;
            created += 1;
        }
    }
    Ok(created)
}

/// The state of `tool_id`'s definition: one shared-data read when the catalog pins it.
pub fn state(
    shared: Option<&dyn SharedData>,
    store: &PolicyStore,
    tool_id: &str,
) -> Result<Definition, StateError> {
    let Some(pin) = store.pin(tool_id) else {
        return Ok(unpinned());
    };
    let entry = Stored::<EntryCodec>::new(key(tool_id));
    let shared = shared.ok_or_else(|| StateError::Unavailable {
        key: entry.key().to_owned(),
        error: "no shared data to keep tool definitions in".to_owned(),
    })?;
    let seen = entry.read(shared)?.map(|(seen, _)| seen);
    Ok(stands(pin, seen.as_ref()))
}

fn unpinned() -> Definition {
    Definition {
        state: State::Unpinned,
        pinned: None,
        seen: None,
    }
}

/// Where a pinned definition stands, given its entry.
fn stands(pin: &str, seen: Option<&Seen>) -> Definition {
    let (state, seen) = match seen.filter(|s| s.pin == pin) {
        None => (State::Unseen, None),
        Some(s) if s.changed => (State::Changed, Some(s.seen.clone())),
        Some(s) => (State::Pinned, Some(s.seen.clone())),
    };
    Definition {
        state,
        pinned: Some(pin.to_owned()),
        seen,
    }
}

/// The definitions a list showed, by tool id, as they stand after it was recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub tools: HashMap<String, Definition>,
}

impl Observed {
    /// The state for `tool_id`: as recorded from this list, else unpinned.
    pub fn get(&self, tool_id: &str) -> Definition {
        self.tools.get(tool_id).cloned().unwrap_or_else(unpinned)
    }
}

/// Records the definitions of a `tools/list` result's pinned tools in shared data and
/// returns where each listed tool stands. A pinned tool listed twice with different
/// definitions is `changed`: an agent could read either. An unreadable or corrupt
/// entry fails the whole list (closed): the caller hides every item.
pub fn observe(
    shared: &dyn SharedData,
    store: &PolicyStore,
    server: &str,
    items: &[Value],
) -> Result<Observed, StateError> {
    let mut digests: Vec<(String, String)> = Vec::new();
    for item in items {
        let name = item.get("name").and_then(Value::as_str);
        let Some(tool_id) = name.map(|name| format!("{server}/{name}")) else {
            continue;
        };
        if store.pin(&tool_id).is_none() {
            continue;
        }
        // `name` is a string here, so the digest exists.
        if let Ok(digest) = digest(item) {
            digests.push((tool_id, digest));
        }
    }
    let mut observed = Observed::default();
    for (tool_id, digest) in &digests {
        let Some(pin) = store.pin(tool_id) else {
            continue;
        };
        let entry = Stored::<EntryCodec>::new(key(tool_id));
        let updated = shared::update(shared, &entry, MAX_CONFLICTS, |stored| {
            let next = record(pin, stored, digest);
            let write = next != *stored;
            *stored = next;
            (stored.clone(), write)
        })?;
        observed
            .tools
            .insert(tool_id.clone(), stands(pin, Some(&updated.outcome)));
    }
    Ok(observed)
}

/// The entry after a list showed `digest` for a tool pinned to `pin`.
fn record(pin: &str, stored: &Seen, digest: &str) -> Seen {
    if stored.pin != pin {
        // Never seen since this pin: start afresh.
        return Seen {
            pin: pin.to_owned(),
            seen: digest.to_owned(),
            changed: digest != pin,
        };
    }
    if stored.changed {
        // Sticky: keep the first digest that differed.
        return stored.clone();
    }
    Seen {
        pin: pin.to_owned(),
        seen: digest.to_owned(),
        changed: digest != pin,
    }
}
