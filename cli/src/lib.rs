//! The CLI's library: what the policy tooling needs and the wasm filter never carries.

pub mod a2a_catalog;
pub mod mcp_schema;
