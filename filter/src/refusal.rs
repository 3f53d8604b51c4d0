//! Why a stage stopped a request: the reason, and what the record and the client are told.

use serde_json::Value;

use crate::reason::Reason;

/// Why a stage stopped the request: the reason, and what the record should say.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub reason: Reason,
    /// What went wrong, for the record's `errors` (never sent to the client).
    pub errors: Vec<String>,
    /// The determining policies, when policy refused.
    pub policies: Vec<String>,
    /// For `approval_required`: what to approve (agent, server, tool, args_digest).
    pub approve: Option<Box<Value>>,
    /// For `rate_limited`: seconds until the call can succeed.
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// A refusal with nothing more to say than its reason.
    pub fn new(reason: Reason) -> Self {
        Self {
            reason,
            errors: Vec::new(),
            policies: Vec::new(),
            approve: None,
            retry_after: None,
        }
    }

    /// A refusal and the error behind it.
    pub fn because(reason: Reason, error: impl Into<String>) -> Self {
        Self {
            errors: vec![error.into()],
            ..Self::new(reason)
        }
    }

    /// toolgate's own state failed it: fail closed, and say why.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::because(Reason::Internal, error.to_string())
    }
}

impl From<Reason> for Refusal {
    fn from(reason: Reason) -> Self {
        Self::new(reason)
    }
}
