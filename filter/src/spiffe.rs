//! SPIFFE IDs: the workload identity syntax, checked to the letter of the specification.

/// A SPIFFE ID checked against the SPIFFE specification's syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiffeId {
    id: String,
    trust_domain_len: usize,
}

impl SpiffeId {
    const SCHEME: &'static str = "spiffe://";

    pub fn parse(uri: &str) -> Option<Self> {
        let rest = uri.strip_prefix(Self::SCHEME)?;
        let (domain, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let domain_ok = !domain.is_empty()
            && domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
        // Path segments: non-empty, no "." or "..", characters from the spec's set.
        let path_ok = path.is_empty()
            || path.split('/').skip(1).all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            });
        (domain_ok && path_ok).then(|| Self {
            id: uri.to_owned(),
            trust_domain_len: domain.len(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }

    pub fn trust_domain(&self) -> &str {
        let start = Self::SCHEME.len();
        self.id
            .get(start..start + self.trust_domain_len)
            .unwrap_or("")
    }
}
