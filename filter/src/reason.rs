//! Why a request was refused: one code per cause, shared by the response, the log and the counters.

/// A refusal's cause. Policy denials are ordinary outcomes; every other variant is
/// an input or internal error that toolgate fails closed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A forbid policy matched.
    Forbidden,
    /// No permit policy matched.
    NotPermitted,
    /// A policy could not be evaluated for this request.
    PolicyError,
    /// Only forbid policies that read `context.rate` matched: try again later.
    RateLimited,
    UntrustedTrustDomain,
    InvalidSpiffeId,
    MultipleUriSans,
    TokenMissing,
    TokenInvalid,
    DelegatedActorNotPermitted,
    ApprovalRequired,
    Revoked,
    NotAController,
    InvalidHeader,
    InvalidJson,
    DuplicateJsonKey,
    UnsupportedCharset,
    InvalidJsonRpc,
    InvalidName,
    MethodOverride,
    InvalidParams,
    /// A declared argument does not have its declared type.
    InvalidArguments,
    BatchRejected,
    BodyTooLarge,
    UnsupportedEncoding,
    /// The filter could not build an authorization request.
    Internal,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Self::Forbidden => "forbidden_by_policy",
            Self::NotPermitted => "not_permitted",
            Self::PolicyError => "policy_evaluation_error",
            Self::RateLimited => "rate_limited",
            Self::UntrustedTrustDomain => "untrusted_trust_domain",
            Self::InvalidSpiffeId => "invalid_spiffe_id",
            Self::MultipleUriSans => "multiple_uri_sans",
            Self::TokenMissing => "token_missing",
            Self::TokenInvalid => "token_invalid",
            Self::DelegatedActorNotPermitted => "delegated_actor_not_permitted",
            Self::ApprovalRequired => "approval_required",
            Self::Revoked => "revoked",
            Self::NotAController => "not_a_controller",
            Self::InvalidHeader => "invalid_header",
            Self::InvalidJson => "invalid_json",
            Self::DuplicateJsonKey => "duplicate_json_key",
            Self::UnsupportedCharset => "unsupported_charset",
            Self::InvalidName => "invalid_name",
            Self::MethodOverride => "method_override",
            Self::InvalidJsonRpc => "invalid_jsonrpc",
            Self::InvalidParams => "invalid_params",
            Self::InvalidArguments => "invalid_arguments",
            Self::BatchRejected => "batch_rejected",
            Self::BodyTooLarge => "body_too_large",
            Self::UnsupportedEncoding => "unsupported_content_encoding",
            Self::Internal => "internal_error",
        }
    }

    /// A short sentence for the agent that was refused.
    pub fn message(self) -> &'static str {
        match self {
            Self::Forbidden => "the call is forbidden by policy",
            Self::NotPermitted => "no policy permits the call",
            Self::PolicyError => "a policy could not be evaluated for this call",
            Self::RateLimited => "too many calls: a rate limit in policy refused this one",
            Self::UntrustedTrustDomain => "the client's SPIFFE trust domain is not trusted",
            Self::InvalidSpiffeId => "the client's identity is not a valid SPIFFE ID",
            Self::MultipleUriSans => "the client certificate has more than one URI SAN",
            Self::TokenMissing => "a verified bearer token is required",
            Self::ApprovalRequired => "this call needs a human approval bound to it",
            Self::Revoked => "the task or token was revoked",
            Self::NotAController => "only a configured controller may revoke",
            Self::TokenInvalid => "the bearer token did not verify",
            Self::DelegatedActorNotPermitted => {
                "an actor in the token's delegation chain may not make this call"
            }
            Self::InvalidHeader => "a request header toolgate reads is not valid UTF-8",
            Self::InvalidJson => "the request body is not valid JSON",
            Self::DuplicateJsonKey => "the request body repeats a JSON object key",
            Self::UnsupportedCharset => "the request body must be UTF-8 without a byte order mark",
            Self::InvalidName => {
                "the tool, prompt or resource name has characters toolgate does not accept"
            }
            Self::MethodOverride => "HTTP method override headers are not accepted",
            Self::InvalidJsonRpc => "the request body is not a valid JSON-RPC 2.0 message",
            Self::InvalidParams => "the JSON-RPC params are missing or malformed for this method",
            Self::InvalidArguments => {
                "an argument does not have the type the tool catalog declares"
            }
            Self::BatchRejected => "JSON-RPC batches are not accepted",
            Self::BodyTooLarge => "the request body is larger than toolgate evaluates",
            Self::UnsupportedEncoding => "compressed request bodies are not evaluated",
            Self::Internal => "toolgate could not evaluate the call",
        }
    }

    /// True for the policy's own verdicts and refused identities; false for the
    /// errors toolgate failed closed on (the only ones a fail-open route lets through).
    pub fn is_policy_decision(self) -> bool {
        matches!(
            self,
            Self::Forbidden
                | Self::NotPermitted
                | Self::RateLimited
                | Self::UntrustedTrustDomain
                | Self::InvalidSpiffeId
                | Self::MultipleUriSans
                | Self::TokenMissing
                | Self::TokenInvalid
                | Self::DelegatedActorNotPermitted
                | Self::ApprovalRequired
                | Self::Revoked
                | Self::NotAController
        )
    }

    pub fn http_status(self) -> u32 {
        match self {
            Self::InvalidJson
            | Self::DuplicateJsonKey
            | Self::InvalidJsonRpc
            | Self::InvalidParams
            | Self::InvalidArguments
            | Self::InvalidName
            | Self::InvalidHeader
            | Self::MethodOverride => 400,
            Self::TokenMissing | Self::TokenInvalid => 401,
            Self::BodyTooLarge => 413,
            Self::RateLimited => 429,
            Self::UnsupportedEncoding | Self::UnsupportedCharset => 415,
            _ => 403,
        }
    }

    /// The JSON-RPC error code for an MCP client.
    pub fn jsonrpc_code(self) -> i64 {
        match self {
            Self::InvalidJson | Self::DuplicateJsonKey | Self::UnsupportedCharset => -32700,
            Self::InvalidJsonRpc | Self::BatchRejected | Self::MethodOverride => -32600,
            Self::InvalidParams | Self::InvalidArguments | Self::InvalidName => -32602,
            // -32000..-32099 is reserved for implementation-defined server errors.
            Self::Forbidden
            | Self::NotPermitted
            | Self::RateLimited
            | Self::DelegatedActorNotPermitted
            | Self::ApprovalRequired => -32001,
            _ => -32002,
        }
    }
}
