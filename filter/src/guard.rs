//! Condition guards: a policy's leading `has` and `==` tests on the context, read at
//! configure time, so a request skips the policies its context rules out.
//!
//! Cedar evaluates a policy as `scope && c1 && c2 && ...`, left to right, stopping at
//! the first false. When the first `when` clause starts with tests this module can
//! evaluate on the request's context (`context has P`, `context.P == literal`), and
//! one of them is false while none before it erred, the policy is false *without
//! error*: leaving it out changes neither the decision, nor the determining
//! policies, nor the errors. Anything this module cannot decide exactly (a missing
//! attribute read without `has`, an entity, a residual context) keeps the policy.

use std::collections::HashMap;

use cedar_policy::{Context, EvalResult, Policy};
use serde_json::Value;
use smol_str::SmolStr;

use crate::cedar_value::{self, CedarValue, Pair};

/// A literal a guard compares with: the scalar kinds whose `==` is plain equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Literal {
    Bool(bool),
    Long(i64),
    String(SmolStr),
}

impl Literal {
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(Self::Bool(*b)),
            Value::Number(n) => n.as_i64().map(Self::Long),
            Value::String(s) => Some(Self::String(s.as_str().into())),
            _ => None,
        }
    }

    /// The literal a context value equals, if it is a scalar one can be.
    fn of(value: &EvalResult) -> Option<Self> {
        match value {
            EvalResult::Bool(b) => Some(Self::Bool(*b)),
            EvalResult::Long(n) => Some(Self::Long(*n)),
            EvalResult::String(s) => Some(Self::String(s.as_str().into())),
            _ => None,
        }
    }
}

/// One leading test of a policy's first `when` clause.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Check {
    /// `context.<path> has a.b.c`
    Has {
        path: Vec<String>,
        attrs: Vec<String>,
    },
    /// `context.<path> == literal` (either way round)
    Eq { path: Vec<String>, literal: Literal },
}

/// A policy's guard: its leading checks, the last one an equality the index keys on,
/// or a `has` the policy is dropped by when false.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The checks before the last, and the last with its literal left out: policies
    /// with the same shape are decided together.
    pub shape: Shape,
    /// The last check's literal, when it is an equality.
    pub literal: Option<Literal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shape {
    pub before: Vec<Check>,
    pub last: Last,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Last {
    Has {
        path: Vec<String>,
        attrs: Vec<String>,
    },
    Eq {
        path: Vec<String>,
    },
}

impl Guard {
    /// The guard of a policy, if its first condition is a `when` that starts with
    /// checks this module can evaluate. Read from Cedar's JSON form of the policy.
    pub fn of(policy: &Policy) -> Option<Self> {
        let json = policy.to_json().ok()?;
        let first = json.get("conditions")?.as_array()?.first()?;
        if first.get("kind")?.as_str()? != "when" {
            return None;
        }
        let mut conjuncts = Vec::new();
        flatten_and(first.get("body")?, &mut conjuncts);
        let mut checks: Vec<Check> = conjuncts.iter().map_while(|c| check(c)).collect();
        let (last, literal) = match checks.pop()? {
            Check::Has { path, attrs } => (Last::Has { path, attrs }, None),
            Check::Eq { path, literal } => (Last::Eq { path }, Some(literal)),
        };
        Some(Self {
            shape: Shape {
                before: checks,
                last,
            },
            literal,
        })
    }
}

/// `a && b && c`, in evaluation order.
fn flatten_and<'v>(expr: &'v Value, out: &mut Vec<&'v Value>) {
    match expr.get("&&") {
        Some(and) => {
            if let (Some(left), Some(right)) = (and.get("left"), and.get("right")) {
                flatten_and(left, out);
                flatten_and(right, out);
            } else {
                out.push(expr);
            }
        }
        None => out.push(expr),
    }
}

fn check(expr: &Value) -> Option<Check> {
    if let Some(has) = expr.get("has") {
        let path = context_path(has.get("left")?)?;
        let attrs = match has.get("attr")? {
            Value::String(attr) => vec![attr.clone()],
            Value::Array(attrs) => attrs
                .iter()
                .map(|a| a.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()?,
            _ => return None,
        };
        return (!attrs.is_empty()).then_some(Check::Has { path, attrs });
    }
    let eq = expr.get("==")?;
    let (left, right) = (eq.get("left")?, eq.get("right")?);
    let (path, literal) = match (context_path(left), context_path(right)) {
        (Some(path), None) => (path, right),
        (None, Some(path)) => (path, left),
        _ => return None,
    };
    let literal = Literal::from_json(literal.get("Value")?)?;
    // `context == x` compares the whole record; only attribute paths are keyed.
    (!path.is_empty()).then_some(Check::Eq { path, literal })
}

/// `context.a.b` as `["a", "b"]`; `context` itself as `[]`.
fn context_path(expr: &Value) -> Option<Vec<String>> {
    if expr.get("Var").and_then(Value::as_str) == Some("context") {
        return Some(Vec::new());
    }
    let access = expr.get(".")?;
    let mut path = context_path(access.get("left")?)?;
    path.push(access.get("attr")?.as_str()?.to_owned());
    Some(path)
}

/// What a shape's checks come to on one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Selection {
    /// Some check is false, none before it erred: every policy of the shape is false.
    None,
    /// Not decided here (an error, an entity, a residual context): keep them all.
    All,
    /// The checks before the last hold; the last compares this value (`None`: not a
    /// scalar, so equal to no literal).
    Literal(Option<Literal>),
    /// Every check holds (the last is a `has`): keep them all.
    Holds,
}

/// Where a [`Lookup`] reads the request's context.
#[derive(Clone, Copy)]
pub enum ContextSource<'c> {
    /// The context as toolgate built it (what Cedar got): read in place.
    Built(&'c [Pair]),
    /// Cedar's context (a request read back from a record): each top-level attribute
    /// read is copied out once.
    Cedar(&'c Context),
}

impl<'c> From<&'c Context> for ContextSource<'c> {
    fn from(context: &'c Context) -> Self {
        Self::Cedar(context)
    }
}

/// The request's context, read once per top-level attribute.
pub struct Lookup<'c> {
    source: Option<ContextSource<'c>>,
    read: HashMap<String, Option<EvalResult>>,
}

enum Truth {
    True,
    False,
    Unsure,
}

/// A value in the context, from either source.
#[derive(Clone, Copy)]
enum Node<'a> {
    Built(&'a CedarValue),
    Cedar(&'a EvalResult),
}

impl<'a> Node<'a> {
    /// The record's fields (`None`: not a record, so `has` and `.` on it are not
    /// decided here: an entity's attributes, an error, an unknown).
    fn record(self) -> Option<Fields<'a>> {
        match self {
            Self::Built(CedarValue::Record(fields)) => Some(Fields::Built(fields)),
            Self::Cedar(EvalResult::Record(record)) => Some(Fields::Cedar(record)),
            _ => None,
        }
    }

    /// The literal the value equals, if it is a scalar one can be; `Err` for an
    /// unknown, which could be anything.
    fn literal(self) -> Result<Option<Literal>, ()> {
        match self {
            Self::Built(CedarValue::Bool(b)) => Ok(Some(Literal::Bool(*b))),
            Self::Built(CedarValue::Long(n)) => Ok(Some(Literal::Long(*n))),
            Self::Built(CedarValue::String(s)) => Ok(Some(Literal::String(s.clone()))),
            Self::Built(CedarValue::Unknown(_)) => Err(()),
            Self::Built(
                CedarValue::Set(_)
                | CedarValue::Record(_)
                | CedarValue::Entity(_)
                | CedarValue::Decimal(_),
            ) => Ok(None),
            Self::Cedar(value) => Ok(Literal::of(value)),
        }
    }
}

#[derive(Clone, Copy)]
enum Fields<'a> {
    Built(&'a [Pair]),
    Cedar(&'a cedar_policy::Record),
}

impl<'a> Fields<'a> {
    fn get(self, key: &str) -> Option<Node<'a>> {
        match self {
            Self::Built(fields) => cedar_value::find(fields, key).map(Node::Built),
            Self::Cedar(record) => record.get(key).map(Node::Cedar),
        }
    }
}

impl<'c> Lookup<'c> {
    /// `None`: a context with unknowns, which decides nothing here.
    pub fn new(source: Option<ContextSource<'c>>) -> Self {
        Self {
            source,
            read: HashMap::new(),
        }
    }

    pub fn select(&mut self, shape: &Shape) -> Selection {
        if self.source.is_none() {
            return Selection::All;
        }
        for check in &shape.before {
            let truth = match check {
                Check::Has { path, attrs } => self.has(path, attrs),
                Check::Eq { path, literal } => match self.value(path).map(Node::literal) {
                    Some(Ok(value)) if value.as_ref() == Some(literal) => Truth::True,
                    Some(Ok(_)) => Truth::False,
                    Some(Err(())) | None => Truth::Unsure,
                },
            };
            match truth {
                Truth::True => {}
                Truth::False => return Selection::None,
                Truth::Unsure => return Selection::All,
            }
        }
        match &shape.last {
            Last::Has { path, attrs } => match self.has(path, attrs) {
                Truth::True => Selection::Holds,
                Truth::False => Selection::None,
                Truth::Unsure => Selection::All,
            },
            Last::Eq { path } => match self.value(path).map(Node::literal) {
                Some(Ok(value)) => Selection::Literal(value),
                Some(Err(())) | None => Selection::All,
            },
        }
    }

    /// `context.<path> has a.b.c`: `has` on each record in turn, false at the first
    /// attribute missing. Unsure where Cedar would err or read an entity.
    fn has(&mut self, path: &[String], attrs: &[String]) -> Truth {
        let Some((first, rest)) = attrs.split_first() else {
            return Truth::Unsure;
        };
        // `context has a` is the one test on the context record itself.
        let found = if path.is_empty() {
            self.top(first)
        } else {
            let Some(record) = self.value(path).and_then(Node::record) else {
                return Truth::Unsure;
            };
            record.get(first)
        };
        let Some(mut current) = found else {
            return Truth::False;
        };
        for attr in rest {
            let Some(record) = current.record() else {
                return Truth::Unsure;
            };
            match record.get(attr) {
                Some(value) => current = value,
                None => return Truth::False,
            }
        }
        Truth::True
    }

    /// `context.<path>`, when every step is a record that has the next attribute.
    fn value(&mut self, path: &[String]) -> Option<Node<'_>> {
        let (first, rest) = path.split_first()?;
        let mut current = self.top(first)?;
        for attr in rest {
            current = current.record()?.get(attr)?;
        }
        Some(current)
    }

    fn top(&mut self, key: &str) -> Option<Node<'_>> {
        match self.source? {
            ContextSource::Built(pairs) => cedar_value::find(pairs, key).map(Node::Built),
            ContextSource::Cedar(context) => {
                if !self.read.contains_key(key) {
                    self.read.insert(key.to_owned(), context.get(key));
                }
                self.read.get(key)?.as_ref().map(Node::Cedar)
            }
        }
    }
}
