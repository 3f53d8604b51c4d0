//! Authorization: evaluate the policy slice, and treat any evaluation error as a denial.

use std::rc::Rc;

use cedar_policy::{Authorizer, Decision, PolicyId};

use crate::cedar_request::{BuildError, Built};
use crate::guard::ContextSource;
use crate::policy::{PolicyStore, Slice};
use crate::reason::Reason;

/// Cedar's answer for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `None` means allowed.
    pub denied: Option<Reason>,
    /// The determining policies: the permits that allowed, or the forbids that denied.
    pub policies: Vec<String>,
    pub errors: Vec<String>,
}

/// The policies Cedar evaluates for this request: its scope slice, less the policies
/// whose guards its concrete context rules out (see `PolicyStore::policies_deciding`).
pub fn slice(store: &PolicyStore, built: &Built) -> Result<Rc<Slice>, BuildError> {
    let (principal, action, resource) = (&built.principal, &built.action, &built.resource);
    if !built.concrete {
        return Ok(store.policies_for(principal, action, resource));
    }
    Ok(match &built.values {
        Some(values) => {
            store.policies_deciding(principal, action, resource, ContextSource::Built(values))
        }
        None => match built.request()?.context() {
            Some(context) => store.policies_deciding(principal, action, resource, context),
            None => store.policies_for(principal, action, resource),
        },
    })
}

pub fn authorize(authorizer: &Authorizer, store: &PolicyStore, built: &Built) -> Verdict {
    // Cedar gets the context attributes the slice reads, no others (see `context_keys`).
    let request = slice(store, built).and_then(|slice| {
        let request = built.request_reading(&slice.context_keys)?;
        Ok((slice, request))
    });
    let (slice, request) = match request {
        Ok(ready) => ready,
        Err(error) => {
            return Verdict {
                denied: Some(Reason::Internal),
                policies: Vec::new(),
                errors: vec![error.0],
            }
        }
    };
    let entities = store.entities_for(&built.resource);
    let response = authorizer.is_authorized(&request, &slice.policies, &entities);
    let diagnostics = response.diagnostics();
    let determining: Vec<String> = diagnostics.reason().map(policy_id).collect();
    let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
    // Cedar skips a policy that errors; a skipped forbid must not turn into an allow.
    let denied = if !errors.is_empty() {
        Some(Reason::PolicyError)
    } else {
        match response.decision() {
            Decision::Allow => None,
            Decision::Deny if determining.is_empty() => Some(Reason::NotPermitted),
            // A forbid may say what kind of no it is (`@refusal`, see `PolicyStore::declared_refusal`).
            Decision::Deny => Some(
                store
                    .declared_refusal(&determining)
                    .unwrap_or(Reason::Forbidden),
            ),
        }
    };
    Verdict {
        denied,
        policies: determining,
        errors,
    }
}

/// A policy id as Cedar displays it (`str::escape_debug`), without the formatter for
/// the usual id, whose every character displays as itself.
pub fn policy_id(id: &PolicyId) -> String {
    let text: &str = id.as_ref();
    let plain = text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && !matches!(b, b'\\' | b'\'' | b'"'));
    match plain {
        true => text.to_owned(),
        false => id.to_string(),
    }
}
