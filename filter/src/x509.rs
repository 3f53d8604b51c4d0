//! Peer certificate: the URI SANs of the client certificate Envoy verified, read from its DER.
//!
//! Envoy's `connection.uri_san_peer_certificate` gives only the first URI SAN, but an
//! X.509-SVID must carry exactly one; a certificate with two would otherwise be read
//! as whichever came first. So the filter reads the whole certificate.

use base64::Engine;

const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1D, 0x11]; // 2.5.29.17
const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const EXTENSIONS: u8 = 0xA3; // [3] EXPLICIT in TBSCertificate
const URI_NAME: u8 = 0x86; // [6] IMPLICIT IA5String in GeneralName

/// The URI SANs of a certificate given as Envoy's `connection.peer_certificate`
/// (URL-encoded PEM); `None` if it cannot be read.
pub fn uri_sans(urlencoded_pem: &[u8]) -> Option<Vec<String>> {
    let pem = percent_decode(urlencoded_pem)?;
    let der = pem_to_der(&pem)?;
    uri_sans_der(&der)
}

fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&b) = bytes.next() {
        out.push(match b {
            b'%' => {
                let hi = char::from(*bytes.next()?).to_digit(16)?;
                let lo = char::from(*bytes.next()?).to_digit(16)?;
                u8::try_from(hi * 16 + lo).ok()?
            }
            other => other,
        });
    }
    Some(out)
}

fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body = text
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)?
        .split("-----END CERTIFICATE-----")
        .next()?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// The URI SANs of a DER certificate; `None` if its structure cannot be read.
pub fn uri_sans_der(der: &[u8]) -> Option<Vec<String>> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut fields = tbs;
    let mut sans = Vec::new();
    while !fields.is_empty() {
        let (tag, content, rest) = tlv(fields)?;
        fields = rest;
        if tag != EXTENSIONS {
            continue;
        }
        let (mut extensions, _) = expect(content, SEQUENCE)?;
        while !extensions.is_empty() {
            let (extension, rest) = expect(extensions, SEQUENCE)?;
            extensions = rest;
            let (oid, after_oid) = expect(extension, OID)?;
            if oid != SUBJECT_ALT_NAME {
                continue;
            }
            let after_critical = match tlv(after_oid)? {
                (BOOLEAN, _, rest) => rest,
                _ => after_oid,
            };
            let (value, _) = expect(after_critical, OCTET_STRING)?;
            let (mut names, _) = expect(value, SEQUENCE)?;
            while !names.is_empty() {
                let (tag, name, rest) = tlv(names)?;
                names = rest;
                if tag == URI_NAME {
                    sans.push(
                        String::from_utf8(name.to_vec())
                            .ok()
                            .filter(|s| s.is_ascii())?,
                    );
                }
            }
        }
    }
    Some(sans)
}

/// The content of the TLV at the start of `data` if its tag is `tag`, and what follows it.
fn expect(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match tlv(data)? {
        (t, content, rest) if t == tag => Some((content, rest)),
        _ => None,
    }
}

/// Splits one DER tag-length-value off the front of `data`.
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 {
            return None;
        }
        let (len_bytes, rest) = (rest.get(..count)?, rest.get(count..)?);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}
