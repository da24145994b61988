//! The access tokens the edge issues at its token endpoint ([`crate::oauth`]): JWTs in the shape
//! of RFC 9068 (`typ: at+jwt`), signed with HMAC-SHA-256 (RFC 7518 §3.2, `HS256`) under a key
//! named by `kid` (RFC 7515 §4.1.4), so several keys can verify while one signs, and keys rotate
//! without downtime.
//!
//! Verification trusts nothing in the token before its signature checks: the header only picks
//! the key, the algorithm must be `HS256` (no `none`, no other algorithm, RFC 8725 §3.1), and the
//! MAC is compared in constant time. Only then are the claims read.

use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::base64url;
use crate::scim::value::parse_json;

/// Shortest signing key accepted, in bytes: HS256 wants a key as long as its output (RFC 7518
/// §3.2).
pub const MIN_KEY_LEN: usize = 32;
/// Longest access token read; the tokens this module writes are a few hundred bytes.
pub const MAX_TOKEN_LEN: usize = 2048;
/// Clock difference tolerated between replicas for `iat` (RFC 9068 §4 leaves it to the server).
pub const CLOCK_SKEW_S: u64 = 60;

/// HMAC-SHA-256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    // Keys longer than the block are hashed first (RFC 2104 §2).
    let digest;
    let key = if key.len() > BLOCK {
        digest = Sha256::digest(key);
        digest.as_slice()
    } else {
        key
    };
    for (slot, byte) in block.iter_mut().zip(key) {
        *slot = *byte;
    }
    let mut inner = Sha256::new();
    let mut outer = Sha256::new();
    let (mut ipad, mut opad) = ([0u8; BLOCK], [0u8; BLOCK]);
    for ((i, o), k) in ipad.iter_mut().zip(opad.iter_mut()).zip(block) {
        *i = k ^ 0x36;
        *o = k ^ 0x5c;
    }
    inner.update(ipad);
    inner.update(message);
    outer.update(opad);
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// A signing key: its id and its secret bytes (from the VM's environment, never the config).
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub kid: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// What a token says once its signature checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub client_id: String,
    pub iat: u64,
    pub exp: u64,
}

/// Why a token was refused (for counters; the client gets one 401 for all of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not three base64url parts of JSON, or too long.
    Malformed,
    /// An algorithm other than HS256, or another token type.
    Algorithm,
    /// No configured key has this `kid`.
    UnknownKey,
    /// The MAC does not match.
    Signature,
    /// Issuer or audience not ours.
    Audience,
    Expired,
    /// Issued in the future (beyond the tolerated skew).
    NotYetValid,
}

/// Signs `claims` under `key`: `header.payload.signature`, each part base64url without padding
/// (RFC 7515 §7.1). `jti` makes each token unique (RFC 9068 §2.2).
pub fn sign(key: &Key, claims: &Claims, jti: &str) -> String {
    // The strings are JSON-safe by construction: the key id, issuer, audience and client id are
    // checked when the configuration is read (no quote, backslash or control character), the
    // jti is hexadecimal.
    let header = format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{}"}}"#, key.kid);
    let payload = format!(
        r#"{{"iss":"{}","aud":"{}","sub":"{id}","client_id":"{id}","iat":{},"exp":{},"jti":"{jti}"}}"#,
        claims.iss,
        claims.aud,
        claims.iat,
        claims.exp,
        id = claims.client_id,
    );
    let mut token = base64url::url(header.as_bytes());
    token.push('.');
    base64url::encode_url(payload.as_bytes(), &mut token);
    let mac = hmac_sha256(&key.secret, token.as_bytes());
    token.push('.');
    base64url::encode_url(&mac, &mut token);
    token
}

/// Whether `text` can be written between JSON quotes as it is: printable, no quote or backslash.
pub fn is_json_safe(text: &str) -> bool {
    text.chars().all(|c| !c.is_control() && c != '"' && c != '\\')
}

/// Whether a bearer token has the shape of a JWS compact serialisation (two dots), so it is worth
/// verifying as one.
pub fn looks_like_jwt(token: &[u8]) -> bool {
    token.iter().filter(|&&b| b == b'.').count() == 2
}

/// Verifies `token` against `keys` and checks issuer, audience and times at `now_s` (seconds
/// since the epoch).
pub fn verify(token: &[u8], keys: &[Key], issuer: &str, audience: &str, now_s: u64) -> Result<Claims, Refused> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Refused::Malformed);
    }
    let mut parts = token.split(|&b| b == b'.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::Malformed);
    };
    let header = decode_json(header)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(Refused::Algorithm);
    }
    // RFC 9068 §4: `at+jwt` (or `application/at+jwt`); a token of another type is not ours.
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or_default();
    if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
        return Err(Refused::Algorithm);
    }
    let kid = header.get("kid").and_then(Value::as_str).ok_or(Refused::UnknownKey)?;
    let key = keys.iter().find(|k| k.kid == kid).ok_or(Refused::UnknownKey)?;
    let signed = token.get(..header_and_payload_len(token)).ok_or(Refused::Malformed)?;
    let expected = hmac_sha256(&key.secret, signed);
    let presented = base64url::decode_url(signature).ok_or(Refused::Malformed)?;
    if !bool::from(presented.as_slice().ct_eq(expected.as_slice())) {
        return Err(Refused::Signature);
    }
    let payload = decode_json(payload)?;
    let text = |name: &str| payload.get(name).and_then(Value::as_str).map(str::to_string).ok_or(Refused::Malformed);
    let number = |name: &str| payload.get(name).and_then(Value::as_u64).ok_or(Refused::Malformed);
    let claims = Claims {
        iss: text("iss")?,
        aud: text("aud")?,
        client_id: text("client_id")?,
        iat: number("iat")?,
        exp: number("exp")?,
    };
    if claims.iss != issuer || claims.aud != audience {
        return Err(Refused::Audience);
    }
    if claims.exp <= now_s {
        return Err(Refused::Expired);
    }
    if claims.iat > now_s.saturating_add(CLOCK_SKEW_S) {
        return Err(Refused::NotYetValid);
    }
    Ok(claims)
}

/// The length of `header.payload`, the signing input (RFC 7515 §5.1).
fn header_and_payload_len(token: &[u8]) -> usize {
    token.iter().rposition(|&b| b == b'.').unwrap_or(0)
}

fn decode_json(part: &[u8]) -> Result<Value, Refused> {
    let bytes = base64url::decode_url(part).ok_or(Refused::Malformed)?;
    match parse_json(&bytes, false) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(Refused::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn key(kid: &str, secret: &str) -> Key {
        Key { kid: kid.into(), secret: secret.as_bytes().to_vec() }
    }

    fn claims() -> Claims {
        Claims { iss: "scim-edge".into(), aud: "scim".into(), client_id: "entra".into(), iat: 1_000, exp: 4_600 }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 (a short key) and test case 6 (a key longer than the block).
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_signed_token_verifies_under_its_key_and_says_who_it_was_issued_to() {
        let keys = [key("old", "o".repeat(32).as_str()), key("new", "n".repeat(32).as_str())];
        for signer in &keys {
            let token = sign(signer, &claims(), "jti-1");
            assert!(looks_like_jwt(token.as_bytes()));
            assert_eq!(verify(token.as_bytes(), &keys, "scim-edge", "scim", 2_000), Ok(claims()));
        }
    }

    #[test]
    fn the_header_says_hs256_at_jwt_and_the_kid() {
        let token = sign(&key("k1", &"s".repeat(32)), &claims(), "j");
        let header = token.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(&base64url::decode_url(header.as_bytes()).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}));
    }

    #[test]
    fn expired_future_foreign_and_unknown_key_tokens_are_refused() {
        let signer = key("k1", &"s".repeat(32));
        let keys = [signer.clone()];
        let token = sign(&signer, &claims(), "j");
        let t = token.as_bytes();
        assert_eq!(verify(t, &keys, "scim-edge", "scim", 4_600), Err(Refused::Expired));
        assert_eq!(verify(t, &keys, "scim-edge", "scim", 1_000 - CLOCK_SKEW_S), Ok(claims()), "within the skew");
        assert_eq!(verify(t, &keys, "scim-edge", "scim", 1_000 - CLOCK_SKEW_S - 1), Err(Refused::NotYetValid));
        assert_eq!(verify(t, &keys, "scim-edge", "other", 2_000), Err(Refused::Audience));
        assert_eq!(verify(t, &keys, "someone", "scim", 2_000), Err(Refused::Audience));
        assert_eq!(verify(t, &[key("k2", &"s".repeat(32))], "scim-edge", "scim", 2_000), Err(Refused::UnknownKey));
        assert_eq!(verify(t, &[key("k1", &"x".repeat(32))], "scim-edge", "scim", 2_000), Err(Refused::Signature));
    }

    #[test]
    fn tampering_with_any_part_breaks_the_signature() {
        let signer = key("k1", &"s".repeat(32));
        let token = sign(&signer, &claims(), "j");
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload: Value = serde_json::from_slice(&base64url::decode_url(parts[1].as_bytes()).unwrap()).unwrap();
        payload["exp"] = serde_json::json!(999_999);
        let forged = format!("{}.{}.{}", parts[0], base64url::url(payload.to_string().as_bytes()), parts[2]);
        assert_eq!(
            verify(forged.as_bytes(), std::slice::from_ref(&signer), "scim-edge", "scim", 2_000),
            Err(Refused::Signature)
        );
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(verify(&flipped, &[signer], "scim-edge", "scim", 2_000), Err(Refused::Signature));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused_before_any_key_is_used() {
        let signer = key("k1", &"s".repeat(32));
        let token = sign(&signer, &claims(), "j");
        let payload = token.split('.').nth(1).unwrap();
        for header in [
            serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": "k1"}),
            serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}),
            serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}),
        ] {
            let forged = format!("{}.{payload}.", base64url::url(header.to_string().as_bytes()));
            assert_eq!(
                verify(forged.as_bytes(), std::slice::from_ref(&signer), "scim-edge", "scim", 2_000),
                Err(Refused::Algorithm)
            );
        }
    }

    #[test]
    fn garbage_is_malformed_never_a_panic() {
        let keys = [key("k1", &"s".repeat(32))];
        for garbage in [&b""[..], b"a.b", b"a.b.c.d", b"...", b"e30.e30.", b"!!.??.**", b"W10.W10.AAAA"] {
            assert!(verify(garbage, &keys, "i", "a", 0).is_err(), "{garbage:?}");
        }
        assert_eq!(verify(&vec![b'a'; MAX_TOKEN_LEN + 1], &keys, "i", "a", 0), Err(Refused::Malformed));
    }

    #[test]
    fn debug_output_never_shows_a_key() {
        let shown = format!("{:?}", key("k1", "super-secret-signing-key-material"));
        assert!(shown.contains("k1") && !shown.contains("super-secret"), "{shown}");
    }
}
