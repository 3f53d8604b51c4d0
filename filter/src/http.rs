//! HTTP facts: the request line and the headers later stages read, taken from Envoy's header map.

use crate::reason::Reason;

/// A request header as Envoy hands it over: lower-case name, raw value.
pub type Header = (String, Vec<u8>);

/// The request as the filter saw it.
pub struct HttpRequest<'a> {
    pub headers: &'a [Header],
    pub body: &'a [u8],
}

impl<'a> HttpRequest<'a> {
    /// The first value of a header, if present.
    pub fn raw(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// A header as text; present but not UTF-8 is an error, not an absence.
    pub fn text(&self, name: &str) -> Result<Option<&'a str>, Reason> {
        match self.raw(name) {
            None => Ok(None),
            Some(value) => std::str::from_utf8(value)
                .map(Some)
                .map_err(|_| Reason::InvalidHeader),
        }
    }

    /// A header that carries a declared value: missing or empty means absent.
    pub fn declared(&self, name: &str) -> Result<Option<String>, Reason> {
        Ok(self
            .text(name)?
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned))
    }

    pub fn method(&self) -> &'a str {
        self.text(":method").ok().flatten().unwrap_or("")
    }

    /// The path without its query string.
    pub fn path(&self) -> &'a str {
        let full = self.text(":path").ok().flatten().unwrap_or("");
        full.split(['?', '#']).next().unwrap_or(full)
    }

    pub fn request_id(&self) -> Option<&'a str> {
        self.text("x-request-id").ok().flatten()
    }

    /// True when the content type says JSON (`application/json`, `application/*+json`, ...).
    pub fn declares_json(&self) -> bool {
        self.text("content-type")
            .ok()
            .flatten()
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"))
    }

    /// False when the content type names a charset other than UTF-8 (or is not text).
    pub fn charset_is_utf8(&self) -> bool {
        let Ok(content_type) = self.text("content-type") else {
            return false;
        };
        content_type
            .into_iter()
            .flat_map(|ct| ct.split(';').skip(1))
            .all(|param| match param.trim().split_once('=') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                    let value = value.trim().trim_matches('"');
                    value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
                }
                _ => true,
            })
    }

    /// The method-override header a client sent, if any: upstream frameworks may
    /// honour it, so the method toolgate authorized would not be the one executed.
    pub fn method_override(&self) -> Option<&'static str> {
        const OVERRIDES: [&str; 3] = [
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
        ];
        OVERRIDES.into_iter().find(|name| self.raw(name).is_some())
    }

    /// True when the body is compressed or otherwise encoded, so its bytes are not the JSON.
    pub fn has_content_encoding(&self) -> bool {
        match self.text("content-encoding") {
            Ok(None) => false,
            Ok(Some(e)) => !(e.trim().is_empty() || e.trim().eq_ignore_ascii_case("identity")),
            Err(_) => true,
        }
    }
}
