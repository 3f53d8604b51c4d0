//! Delegation: on-behalf-of never widens access; each SPIFFE actor in the token's chain must itself be permitted.

use cedar_policy::Authorizer;

use crate::authorize::authorize;
use crate::call::Call;
use crate::cedar_request::{self, Facts};
use crate::policy::PolicyStore;
use crate::reason::Reason;
use crate::refusal::Refusal;
use crate::spiffe::SpiffeId;

/// Checks every SPIFFE actor in the verified token's delegation chain, as if it made
/// the call itself, without the subject's token. Other actors (people, services
/// without a SPIFFE ID) are not principals here and are left to policy.
pub fn check(
    authorizer: &Authorizer,
    store: &PolicyStore,
    call: &Call,
    facts: &Facts<'_>,
) -> Result<(), Refusal> {
    let Some(credential) = facts.credential else {
        return Ok(());
    };
    let direct = Facts {
        credential: None,
        ..*facts
    };
    for actor in credential
        .delegation
        .iter()
        .filter(|a| SpiffeId::parse(a).is_some())
    {
        let principal = store.types.uid(&store.types.agent, actor);
        let built = cedar_request::build_as(store, principal, call, &direct)
            .map_err(|e| Refusal::internal(e.0))?;
        let verdict = authorize(authorizer, store, &built);
        if verdict.denied.is_some() {
            return Err(Refusal {
                policies: verdict.policies,
                ..Refusal::because(
                    Reason::DelegatedActorNotPermitted,
                    format!("delegated actor {actor} is not permitted"),
                )
            });
        }
    }
    Ok(())
}
