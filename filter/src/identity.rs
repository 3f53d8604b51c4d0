//! Identity: the principal, from the verified mTLS peer certificate (or, in development, a header).

use crate::config::Config;
use crate::reason::Reason;
pub use crate::spiffe::SpiffeId;

/// What Envoy knows of the downstream connection's peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The URI SANs of the client certificate Envoy verified (none without one).
    pub uri_sans: Vec<String>,
    /// A certificate was presented but could not be read.
    pub unreadable: bool,
}

impl Peer {
    /// A peer whose certificate carries exactly this URI SAN.
    pub fn with_uri_san(uri: &str) -> Self {
        Self {
            uri_sans: vec![uri.to_owned()],
            unreadable: false,
        }
    }

    /// From Envoy's `connection.peer_certificate` property (URL-encoded PEM), if any.
    pub fn from_envoy_certificate(property: Option<&[u8]>) -> Self {
        match property.filter(|p| !p.is_empty()) {
            None => Self::default(),
            Some(pem) => match crate::x509::uri_sans(pem) {
                Some(uri_sans) => Self {
                    uri_sans,
                    unreadable: false,
                },
                None => Self {
                    uri_sans: Vec::new(),
                    unreadable: true,
                },
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Agent(SpiffeId),
    Unauthenticated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub principal: Principal,
    /// True when the identity came from the development header, not a certificate.
    pub insecure: bool,
    /// The trusted hop whose `x-forwarded-client-cert` named the principal, if any.
    pub via: Option<String>,
}

impl Identity {
    pub fn trust_domain(&self) -> Option<&str> {
        match &self.principal {
            Principal::Agent(id) => Some(id.trust_domain()),
            Principal::Unauthenticated => None,
        }
    }
}

/// An identity that was presented but refused, kept for the decision log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: Reason,
    pub claimed: String,
}

/// The request headers identity may come from, each honoured only as configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimedHeaders<'a> {
    /// `x-forwarded-client-cert`, honoured only from a trusted hop.
    pub xfcc: Option<&'a str>,
    /// The development identity header, honoured only when configured and without a certificate.
    pub dev: Option<&'a str>,
}

impl Identity {
    /// The agent's SPIFFE ID, when the caller is one.
    pub fn agent(&self) -> Option<&str> {
        match &self.principal {
            Principal::Agent(id) => Some(id.as_str()),
            Principal::Unauthenticated => None,
        }
    }
}

/// The header a trusted hop forwards the client's certificate in.
pub const XFCC: &str = "x-forwarded-client-cert";

impl<'a> ClaimedHeaders<'a> {
    /// The identity headers this configuration reads, and only those.
    pub fn of(config: &Config, request: &crate::http::HttpRequest<'a>) -> Result<Self, Reason> {
        Ok(Self {
            xfcc: match config.trusted_hops.is_empty() {
                true => None,
                false => request.text(XFCC)?,
            },
            dev: match &config.dev_identity_header {
                Some(name) => request.text(name)?,
                None => None,
            },
        })
    }
}

/// Resolves the principal from the verified peer certificate, or from the XFCC
/// header when that certificate is a trusted hop's, or (development only) a header.
pub fn resolve(
    config: &Config,
    peer: &Peer,
    claimed: ClaimedHeaders<'_>,
) -> Result<Identity, Refused> {
    let hop = peer
        .uri_sans
        .first()
        .filter(|san| peer.uri_sans.len() == 1 && config.trusted_hops.contains(san));
    if let (Some(hop), Some(xfcc)) = (hop, claimed.xfcc) {
        let forwarded = Peer {
            uri_sans: xfcc_uris(xfcc),
            unreadable: false,
        };
        let mut identity = resolve(config, &forwarded, ClaimedHeaders::default())?;
        identity.via = Some(hop.clone());
        return Ok(identity);
    }
    let dev_header = claimed.dev;
    if peer.unreadable {
        return Err(Refused {
            reason: Reason::InvalidSpiffeId,
            claimed: "(unreadable client certificate)".into(),
        });
    }
    // An X.509-SVID has exactly one URI SAN; with two, which one is the identity?
    if peer.uri_sans.len() > 1 {
        return Err(Refused {
            reason: Reason::MultipleUriSans,
            claimed: peer.uri_sans.join(","),
        });
    }
    let (claimed, insecure) = match (peer.uri_sans.first(), dev_header) {
        (Some(san), _) => (san.as_str(), false),
        (None, Some(header)) if config.dev_identity_header.is_some() => (header, true),
        (None, _) => {
            return Ok(Identity {
                principal: Principal::Unauthenticated,
                insecure: false,
                via: None,
            })
        }
    };
    let refuse = |reason| Refused {
        reason,
        claimed: claimed.to_owned(),
    };
    let id = SpiffeId::parse(claimed).ok_or_else(|| refuse(Reason::InvalidSpiffeId))?;
    if !config.trust_domains.iter().any(|d| d == id.trust_domain()) {
        return Err(refuse(Reason::UntrustedTrustDomain));
    }
    Ok(Identity {
        principal: Principal::Agent(id),
        insecure,
        via: None,
    })
}

/// The `URI` values of the last element of an `x-forwarded-client-cert` header:
/// the element the nearest (trusted) hop appended. Quoted values may hold `,;=`.
fn xfcc_uris(header: &str) -> Vec<String> {
    let elements = split_unquoted(header, ',');
    let Some(last) = elements.last() else {
        return Vec::new();
    };
    split_unquoted(last, ';')
        .into_iter()
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case("uri"))
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .collect()
}

fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(text.get(start..at).unwrap_or(""));
                start = at + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or(""));
    parts
}
