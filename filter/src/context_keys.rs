//! Which context attributes a policy reads, found at configure time from its JSON form.
//!
//! A Cedar policy reads the context only through `context.<attr>`, `context["<attr>"]`
//! and `context has <attr>`, or as a whole value (`context == {...}`). An attribute no
//! policy of a slice names cannot change how any of them evaluates (it cannot make one
//! true, false or an error), so a request can be given to Cedar with only the attributes
//! its slice reads: same decision, determining policies and errors, for less work per
//! call. The largest attribute, `arguments`, is then built for Cedar only when a policy
//! of the slice reads arguments. `tests/slicing.rs` checks the equivalence.

use std::collections::BTreeSet;

use cedar_policy::Policy;
use serde_json::Value;
use smol_str::SmolStr;

/// The context attributes a set of policies reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextKeys {
    /// A policy reads the context as a whole, or its form could not be read: every attribute.
    All,
    /// Only these, sorted and without repeats.
    Only(Vec<SmolStr>),
}

impl ContextKeys {
    /// What one policy reads.
    pub fn of(policy: &Policy) -> Self {
        let mut keys = BTreeSet::new();
        match policy.to_json() {
            Ok(json) if collect(&json, &mut keys) => Self::Only(keys.into_iter().collect()),
            _ => Self::All,
        }
    }

    /// What any of these reads.
    pub fn union<'k>(all: impl IntoIterator<Item = &'k ContextKeys>) -> Self {
        let mut keys = BTreeSet::new();
        for each in all {
            match each {
                Self::All => return Self::All,
                Self::Only(only) => keys.extend(only.iter().cloned()),
            }
        }
        Self::Only(keys.into_iter().collect())
    }

    /// Whether an attribute of this name is read.
    pub fn reads(&self, key: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(keys) => keys.binary_search_by(|k| k.as_str().cmp(key)).is_ok(),
        }
    }
}

/// Adds the attributes this part of a policy's JSON form reads to `keys`; false when
/// it uses the context otherwise (as a whole value).
fn collect(node: &Value, keys: &mut BTreeSet<SmolStr>) -> bool {
    match node {
        Value::Object(fields) => {
            if let Some(attr) = context_attribute(fields) {
                keys.insert(SmolStr::new(attr));
                return true;
            }
            if is_context_variable(node) {
                return false;
            }
            fields.values().all(|value| collect(value, keys))
        }
        Value::Array(items) => items.iter().all(|item| collect(item, keys)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
    }
}

/// `{".": {"left": {"Var": "context"}, "attr": A}}`, or the same with `"has"`, whose
/// `attr` may be a path (`context has a.b` is `"attr": ["a", "b"]`): the A read.
fn context_attribute(fields: &serde_json::Map<String, Value>) -> Option<&str> {
    let mut entries = fields.iter();
    let (Some((operator, operand)), None) = (entries.next(), entries.next()) else {
        return None;
    };
    if operator != "." && operator != "has" {
        return None;
    }
    let Value::Object(operand) = operand else {
        return None;
    };
    if operand.len() != 2 || !operand.get("left").is_some_and(is_context_variable) {
        return None;
    }
    match operand.get("attr")? {
        Value::String(attr) => Some(attr),
        Value::Array(path) => path.first()?.as_str(),
        _ => None,
    }
}

fn is_context_variable(node: &Value) -> bool {
    matches!(node, Value::Object(fields)
        if fields.len() == 1 && fields.get("Var").and_then(Value::as_str) == Some("context"))
}
