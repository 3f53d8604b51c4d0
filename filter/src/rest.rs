//! REST calls: a plain HTTP tool API request becomes the `http` action on a route resource.

use crate::action::Action;
use crate::call::{Call, ResourceKind};
use crate::http::HttpRequest;

/// The call a non-JSON-RPC request makes: `http` on `Route::"<server>/<METHOD> <path>"`.
pub fn call(request: &HttpRequest<'_>, server: &str) -> Call {
    let method = request.method();
    let path = request.path();
    Call {
        action: Action::Http,
        resource_kind: ResourceKind::Route,
        resource_id: format!("{server}/{method} {path}"),
        name: None,
        arguments: None,
        rpc: None,
        a2a: None,
    }
}
