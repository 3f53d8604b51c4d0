//! proxy-wasm's map encoding, as Envoy hands over header maps and metadata structs.
//!
//! A count, then (key length, value length) pairs, then each key and value
//! NUL-terminated. Envoy encodes nested structs the same way, lists as keys with
//! empty values, numbers as 8-byte little-endian doubles and strings raw.

/// Decodes one encoded map; `None` unless the bytes are exactly one well-formed map.
pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(raw)).ok()
    };
    let count = word(0)?;
    let mut sizes = 4usize;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    let mut pairs = Vec::with_capacity(count.min(256));
    for _ in 0..count {
        let (key_len, value_len) = (word(sizes)?, word(sizes.checked_add(4)?)?);
        sizes = sizes.checked_add(8)?;
        let key = bytes.get(data..data.checked_add(key_len)?)?;
        data = data.checked_add(key_len)?;
        (bytes.get(data) == Some(&0)).then_some(())?;
        data = data.checked_add(1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len)?;
        (bytes.get(data) == Some(&0)).then_some(())?;
        data = data.checked_add(1)?;
        pairs.push((key, value));
    }
    (data == bytes.len()).then_some(pairs)
}

/// A number as Envoy encodes it: an 8-byte little-endian double.
pub fn decode_number(bytes: &[u8]) -> Option<f64> {
    let raw: [u8; 8] = bytes.try_into().ok()?;
    Some(f64::from_le_bytes(raw))
}

/// A list as Envoy encodes it: a map whose keys are the items.
pub fn decode_list(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let pairs = decode_pairs(bytes)?;
    pairs
        .iter()
        .all(|(_, value)| value.is_empty())
        .then(|| pairs.into_iter().map(|(key, _)| key).collect())
}

/// Encodes pairs the same way (tests, and the glue's local replies).
pub fn encode_pairs(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len(pairs.len()));
    for (key, value) in pairs {
        out.extend_from_slice(&len(key.len()));
        out.extend_from_slice(&len(value.len()));
    }
    for (key, value) in pairs {
        out.extend_from_slice(key);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}
