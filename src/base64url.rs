//! Base64 (RFC 4648): the URL-safe alphabet without padding for JWTs (RFC 7515 §2), the standard
//! alphabet with padding for HTTP Basic credentials (RFC 7617). Decoding is strict: characters of
//! the other alphabet, misplaced padding and non-zero trailing bits are errors, so one token has
//! one encoding.

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Appends the URL-safe encoding of `bytes`, without padding, to `out`.
pub fn encode_url(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(URL_SAFE.get(index as usize).copied().unwrap_or(b'A')));
        }
    }
}

/// The URL-safe encoding of `bytes`, without padding.
pub fn url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    encode_url(bytes, &mut out);
    out
}

/// Decodes URL-safe base64 without padding.
pub fn decode_url(text: &[u8]) -> Option<Vec<u8>> {
    decode(text, URL_SAFE)
}

/// Decodes standard base64; the padding is required when the length calls for it.
pub fn decode_standard(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let padding = text.iter().rev().take_while(|&&b| b == b'=').count();
    if padding > 2 {
        return None;
    }
    decode(text.get(..text.len() - padding)?, STANDARD)
}

fn decode(text: &[u8], alphabet: &[u8; 64]) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let value = alphabet.iter().position(|a| a == c)?;
            n |= (value as u32) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        let kept = chunk.len() - 1;
        // The bits past the last whole byte must be zero (RFC 4648 §3.5).
        if bytes.get(1 + kept..).is_some_and(|rest| rest.iter().any(|&b| b != 0)) {
            return None;
        }
        out.extend_from_slice(bytes.get(1..1 + kept)?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn rfc_4648_vectors_round_trip() {
        // RFC 4648 §10, without padding.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(url(plain.as_bytes()), encoded);
            assert_eq!(decode_url(encoded.as_bytes()).unwrap(), plain.as_bytes());
        }
        assert_eq!(decode_standard(b"Zm9vYg==").unwrap(), b"foob");
        assert_eq!(decode_standard(b"Zm9vYmE=").unwrap(), b"fooba");
    }

    #[test]
    fn the_alphabets_differ_in_two_characters() {
        assert_eq!(url(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode_url(b"-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode_url(b"+/8"), None);
        assert_eq!(decode_standard(b"+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_standard(b"-_8="), None);
    }

    #[test]
    fn malformed_input_is_refused() {
        for bad in [&b"Zm9vY"[..], b"Zm9=", b"Zh", b"Z===", b"Zm 9v", b"Zm9v\n"] {
            assert_eq!(decode_url(bad), None, "{bad:?}");
        }
        assert_eq!(decode_standard(b"Zm9vYg"), None, "padding required");
        assert_eq!(decode_standard(b"Zm9vYh=="), None, "trailing bits");
        assert_eq!(decode_standard(b"Zg=a"), None);
    }
}
