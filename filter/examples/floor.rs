//! The cost floor of a body-inspecting proxy-wasm filter, for `scripts/bench`'s `wasm-floor` row.
//!
//! It does what toolgate cannot avoid doing and nothing more: it reads every request
//! header, holds the request until its body is in, reads the body, and lets the request
//! go on. What `wasm-floor` adds over bare Envoy is the price of the proxy-wasm ABI and
//! Envoy's body buffering, before any parsing or policy; what `toolgate-default` adds over
//! `wasm-floor` is toolgate's own work. Build:
//! `cargo build --release --target wasm32-wasip1 -p toolgate --example floor`.

#![cfg(target_os = "wasi")]

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Floor) });
}}

struct Floor;

impl Context for Floor {}

impl RootContext for Floor {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request { header_bytes: 0 }))
    }
}

struct Request {
    /// Kept so that reading the headers cannot be optimised away.
    header_bytes: usize,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let headers = self.get_http_request_headers_bytes();
        self.header_bytes = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        if end_of_stream {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        match self.get_http_request_body(0, body_size) {
            Some(body) if body.len() + self.header_bytes > 0 => Action::Continue,
            _ => {
                self.send_http_response(500, vec![], Some(b"floor: no body"));
                Action::Pause
            }
        }
    }
}
