//! The proxy-wasm header-map encoding (ABI v0.2.1): how a whole header map crosses the host
//! boundary in one call. The adapter reads each header map once (`proxy_get_header_map_pairs`)
//! and answers every lookup of the request from that snapshot, rather than making a host call,
//! and a host allocation in the VM, per header.
//!
//! Layout: the pair count, then each pair's name and value sizes (all u32, little-endian), then
//! each name and each value followed by a NUL.

/// A header map as the host encoded it, decoded lazily: lookups walk the encoded bytes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderMap {
    bytes: Vec<u8>,
}

impl HeaderMap {
    /// Takes an encoded map; `None` when the bytes are not a well-formed encoding (sizes that
    /// overrun the buffer, missing terminators), which callers treat like an absent map.
    pub fn decode(bytes: Vec<u8>) -> Option<HeaderMap> {
        let map = HeaderMap { bytes };
        let mut pairs = map.pairs()?;
        pairs.by_ref().for_each(drop);
        pairs.valid.then_some(map)
    }

    /// The value of the first header called `name` (header names are lower case in Envoy's maps,
    /// and `name` must be too); `None` when absent. Same answer as `proxy_get_header_map_value`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.pairs()?.find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v)
    }

    fn pairs(&self) -> Option<Pairs<'_>> {
        let count = read_u32(&self.bytes, 0)?;
        let strings = 4usize.checked_add(count.checked_mul(8)?)?;
        (strings <= self.bytes.len()).then_some(Pairs { bytes: &self.bytes, index: 0, count, at: strings, valid: true })
    }
}

struct Pairs<'a> {
    bytes: &'a [u8],
    index: usize,
    count: usize,
    /// Where the next name starts.
    at: usize,
    valid: bool,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count || !self.valid {
            return None;
        }
        let sizes = 4 + self.index * 8;
        let pair =
            read_u32(self.bytes, sizes).zip(read_u32(self.bytes, sizes + 4)).and_then(|(name_len, value_len)| {
                let name = self.bytes.get(self.at..self.at.checked_add(name_len)?)?;
                let value_at = self.at + name_len + 1;
                let value = self.bytes.get(value_at..value_at.checked_add(value_len)?)?;
                let end = value_at + value_len;
                let terminated = self.bytes.get(self.at + name_len) == Some(&0) && self.bytes.get(end) == Some(&0);
                terminated.then(|| {
                    self.at = end + 1;
                    (name, value)
                })
            });
        self.index += 1;
        if pair.is_none() {
            self.valid = false;
        }
        pair
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(word)).ok()
}

/// Encodes `pairs` for the host (`proxy_send_local_response`, `proxy_dispatch_http_call`).
pub fn encode(pairs: &[(String, String)]) -> Vec<u8> {
    let size = 4 + pairs.iter().map(|(n, v)| n.len() + v.len() + 10).sum::<usize>();
    let mut bytes = Vec::with_capacity(size);
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    bytes.extend_from_slice(&len(pairs.len()));
    for (name, value) in pairs {
        bytes.extend_from_slice(&len(name.len()));
        bytes.extend_from_slice(&len(value.len()));
    }
    for (name, value) in pairs {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn lookups_read_the_encoded_map() {
        let encoded = encode(&pairs(&[
            (":path", "/api/scim/v2/Users"),
            ("authorization", "Bearer a"),
            ("x-empty", ""),
            ("authorization", "Bearer b"),
        ]));
        let map = HeaderMap::decode(encoded).expect("well formed");
        assert_eq!(map.get(":path"), Some(b"/api/scim/v2/Users".as_slice()));
        assert_eq!(map.get("x-empty"), Some(b"".as_slice()));
        // The first of repeated headers, as proxy_get_header_map_value answers.
        assert_eq!(map.get("authorization"), Some(b"Bearer a".as_slice()));
        assert_eq!(map.get("content-type"), None);
        assert_eq!(map.get("Authorization"), None, "names are compared as given: Envoy's are lower case");
    }

    #[test]
    fn an_empty_map_has_nothing() {
        let map = HeaderMap::decode(encode(&[])).expect("well formed");
        assert_eq!(map.get(":path"), None);
    }

    #[test]
    fn malformed_encodings_are_refused() {
        let good = encode(&pairs(&[("a", "1"), ("bb", "22")]));
        assert!(HeaderMap::decode(good.clone()).is_some());
        for cut in 0..good.len() {
            assert!(HeaderMap::decode(good[..cut].to_vec()).is_none(), "truncated at {cut}");
        }
        let mut unterminated = good.clone();
        let last = unterminated.len() - 1;
        unterminated[last] = b'x';
        assert!(HeaderMap::decode(unterminated).is_none());
        let mut huge_count = good;
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(HeaderMap::decode(huge_count).is_none());
        assert!(HeaderMap::decode(Vec::new()).is_none());
    }
}
