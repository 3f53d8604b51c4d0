//! toolgate: decide every AI agent tool call with Cedar, inside Envoy.
//!
//! [`config`] and [`policy`] are built once when Envoy configures the plugin. Per
//! request, [`gate`] runs the stages in order: [`http`] reads the request, [`protocol`]
//! reads its calls (via [`jsonrpc`] and [`mcp`], or [`rest`]), [`mirror`] checks MCP's
//! mirrored headers against them, [`identity`],
//! [`credential`] and [`revocation`] settle who is calling, [`risk`] and [`history`]
//! add live context, and each call goes through [`cedar_request`], [`authorize`],
//! [`rate`], [`delegation`] and [`approval`]. [`conclude`] shapes the verdict and its
//! [`record`]. Only `glue` talks to Envoy. See `docs/architecture.md`.

// One panic traps the VM for every later request on the worker: the filter never
// unwraps, indexes or panics; every failure becomes a refusal with a reason.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

pub mod a2a;
pub mod a2a_tasks;
pub mod action;
pub mod approval;
pub mod arguments;
pub mod authorize;
pub mod behaviour;
pub mod call;
pub mod callout;
pub mod cedar_request;
pub mod cedar_value;
pub mod conclude;
pub mod config;
pub mod context_keys;
pub mod control;
pub mod credential;
pub mod decision;
pub mod definition;
pub mod delegation;
pub mod detect;
pub mod digest;
pub mod encoding;
pub mod enforce;
pub mod gate;
pub mod guard;
pub mod history;
pub mod http;
pub mod identity;
pub mod json;
pub mod jsonrpc;
pub mod list_answer;
pub mod listing;
pub mod mcp;
pub mod mirror;
pub mod number;
pub mod policy;
pub mod protocol;
pub mod rate;
pub mod reason;
pub mod record;
pub mod refusal;
pub mod response;
pub mod rest;
pub mod results;
pub mod revocation;
pub mod risk;
pub mod session;
pub mod shared;
pub mod spiffe;
pub mod time;
pub mod wire;
pub mod x509;

pub use gate::{Gate, Verdict};

#[cfg(target_os = "wasi")]
mod glue;
