//! Why a request was refused: one table row per cause, shared by the response, the log and the counters.

/// What kind of no a refusal is. It decides the counter, and whether a fail-open
/// route may let the request through (only `Protocol` and `Internal` ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// A policy's verdict.
    Policy,
    /// The caller's identity or credential was refused.
    Identity,
    /// The request could not be read as toolgate reads it.
    Protocol,
    /// toolgate could not evaluate the request.
    Internal,
}

/// Declares [`Reason`] and its table: every property of every reason in one row,
/// so a new reason cannot compile without all of them.
macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident => ($code:literal, $http:literal, $rpc:literal, $class:ident, $message:literal), )+) => {
        /// A refusal's cause. See [`Reason::ALL`] for the table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )+
        }

        impl Reason {
            /// Every reason, in table order.
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )+ ];

            fn row(self) -> Row {
                match self {
                    $( Self::$variant => Row {
                        code: $code,
                        http_status: $http,
                        jsonrpc_code: $rpc,
                        class: Class::$class,
                        message: $message,
                    }, )+
                }
            }
        }
    };
}

struct Row {
    code: &'static str,
    http_status: u32,
    jsonrpc_code: i64,
    class: Class,
    message: &'static str,
}

// JSON-RPC codes: -32700 parse error, -32600 invalid request, -32602 invalid params;
// -32020 is MCP's HeaderMismatch; -32010 and -32011 are toolgate's own, in the range MCP leaves implementation-defined
// (-32000 to -32019): -32010 a policy's no, -32011 the request could not be let through.
// Not -32001 for MCP: both MCP SDKs raise it for their own request timeout (A2A's
// `task_not_owned` uses it: it is A2A's TaskNotFoundError). Not -32002: MCP's
// "resource not found".
reasons! {
    /// A forbid policy matched.
    Forbidden => ("forbidden_by_policy", 403, -32010, Policy, "the call is forbidden by policy"),
    /// No permit policy matched.
    NotPermitted => ("not_permitted", 403, -32010, Policy, "no policy permits the call"),
    /// A policy could not be evaluated for this request; fails closed.
    PolicyError => ("policy_evaluation_error", 403, -32011, Internal, "a policy could not be evaluated for this call"),
    /// Every determining forbid is annotated `@refusal("rate_limited")`: try again later.
    RateLimited => ("rate_limited", 429, -32010, Policy, "too many calls: a rate limit in policy refused this one"),
    DelegatedActorNotPermitted => ("delegated_actor_not_permitted", 403, -32010, Policy, "an actor in the token's delegation chain may not make this call"),
    ApprovalRequired => ("approval_required", 403, -32010, Policy, "this call needs a human approval bound to it"),
    UntrustedTrustDomain => ("untrusted_trust_domain", 403, -32011, Identity, "the client's SPIFFE trust domain is not trusted"),
    InvalidSpiffeId => ("invalid_spiffe_id", 403, -32011, Identity, "the client's identity is not a valid SPIFFE ID"),
    MultipleUriSans => ("multiple_uri_sans", 403, -32011, Identity, "the client certificate has more than one URI SAN"),
    TokenMissing => ("token_missing", 401, -32011, Identity, "a verified bearer token is required"),
    TokenInvalid => ("token_invalid", 401, -32011, Identity, "the bearer token did not verify"),
    Revoked => ("revoked", 403, -32011, Identity, "the task or token was revoked"),
    NotAController => ("not_a_controller", 403, -32011, Identity, "only a configured controller may revoke"),
    /// The `Mcp-Session-Id` belongs to a session another principal opened.
    SessionNotOwned => ("session_not_owned", 403, -32011, Identity, "the MCP session belongs to another agent"),
    InvalidHeader => ("invalid_header", 400, -32011, Protocol, "a request header toolgate reads is not valid UTF-8"),
    InvalidJson => ("invalid_json", 400, -32700, Protocol, "the request body is not valid JSON"),
    DuplicateJsonKey => ("duplicate_json_key", 400, -32700, Protocol, "the request body repeats a JSON object key"),
    /// A number literal is not exactly the value toolgate holds (see `number.rs`).
    InexactNumber => ("inexact_number", 400, -32700, Protocol, "a number in the request body has more precision than toolgate carries exactly; send it as a string"),
    /// Two keys of one object are equal ignoring case, as some upstreams match keys.
    FoldedJsonKey => ("folded_json_key", 400, -32700, Protocol, "the request body has two JSON object keys that are equal ignoring case"),
    /// A key is a member toolgate reads (JSON-RPC's, a params field, a declared argument) in another case.
    FoldedMember => ("folded_member", 400, -32600, Protocol, "a JSON key is a member toolgate reads spelled in another case; spell it exactly"),
    UnsupportedCharset => ("unsupported_charset", 415, -32700, Protocol, "the request body must be UTF-8 without a byte order mark"),
    InvalidJsonRpc => ("invalid_jsonrpc", 400, -32600, Protocol, "the request body is not a valid JSON-RPC 2.0 message"),
    InvalidName => ("invalid_name", 400, -32602, Protocol, "the tool, prompt or resource name has characters toolgate does not accept"),
    MethodOverride => ("method_override", 400, -32600, Protocol, "HTTP method override headers are not accepted"),
    InvalidParams => ("invalid_params", 400, -32602, Protocol, "the JSON-RPC params are missing or malformed for this method"),
    /// A declared argument does not have its declared type.
    InvalidArguments => ("invalid_arguments", 400, -32602, Protocol, "an argument does not have the type the tool catalog declares"),
    /// A `Toolgate::Path` argument could resolve outside the prefix it reads as.
    UnsafePath => ("unsafe_path", 400, -32602, Protocol, "a path argument has a `.`, `..` or empty segment, a backslash, a control character or a percent-encoded separator"),
    /// MCP 2026-07-28: an `Mcp-*` header is missing or says other than the body (MCP's `HeaderMismatch`).
    HeaderMismatch => ("header_mismatch", 400, -32020, Protocol, "the request's Mcp-* headers do not say what its body says"),
    BatchRejected => ("batch_rejected", 403, -32600, Protocol, "JSON-RPC batches are not accepted"),
    BodyTooLarge => ("body_too_large", 413, -32011, Protocol, "the request body is larger than toolgate evaluates"),
    UnsupportedEncoding => ("unsupported_content_encoding", 415, -32011, Protocol, "compressed request bodies are not evaluated"),
    /// A2A: the task the call names was not started by the caller (or toolgate never
    /// saw it started), and no policy permits `a2a/SharedTask` for it. Answered as A2A's
    /// TaskNotFoundError (-32001; 404 on HTTP+JSON), so whether it exists is not told.
    TaskNotOwned => ("task_not_owned", 404, -32001, Policy, "task not found: no task of yours has this id"),
    /// A2A: a JSON-RPC method or HTTP+JSON route the A2A table does not name.
    A2aUnknownMethod => ("a2a_unknown_method", 404, -32601, Protocol, "toolgate does not know this A2A method; it is refused"),
    /// A result detector whose effect is `refuse` matched the answer: the agent gets this instead.
    ResultRefused => ("result_refused", 403, -32010, Policy, "the result carried what a detector refuses to pass on"),
    /// The answer (or one SSE event) is larger than `results.max_buffer_bytes`, with `over_limit: refuse`.
    ResultTooLarge => ("result_too_large", 502, -32011, Protocol, "the result is larger than toolgate inspects"),
    /// The filter could not build or finish an authorization request; fails closed.
    Internal => ("internal_error", 403, -32011, Internal, "toolgate could not evaluate the call"),
}

impl Reason {
    /// The stable code, in responses, records, counters and policy annotations.
    pub fn code(self) -> &'static str {
        self.row().code
    }

    /// A short sentence for the agent that was refused.
    pub fn message(self) -> &'static str {
        self.row().message
    }

    pub fn http_status(self) -> u32 {
        self.row().http_status
    }

    /// The JSON-RPC error code for an MCP client.
    pub fn jsonrpc_code(self) -> i64 {
        self.row().jsonrpc_code
    }

    pub fn class(self) -> Class {
        self.row().class
    }

    /// True for the policy's own verdicts and refused identities; false for the
    /// errors toolgate failed closed on (the only ones a fail-open route lets through).
    pub fn is_policy_decision(self) -> bool {
        matches!(self.class(), Class::Policy | Class::Identity)
    }

    /// The reason with this code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.code() == code)
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown refusal reason `{code}`")))
    }
}
