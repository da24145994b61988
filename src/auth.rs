//! Bearer-token authentication of the SCIM client (RFC 6750 §2.1).
//!
//! The configuration holds SHA-256 digests of the accepted tokens, never the tokens, each with a
//! name that stands for it in logs and counters. A presented token is hashed once and compared
//! with every digest in constant time, so neither the position of a match nor the length of a
//! common prefix shows in the timing.

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Longest token accepted. Omni API keys and Entra secret tokens are far shorter; the bound keeps
/// hashing cheap on hostile input (Envoy's header limits apply first).
pub const MAX_TOKEN_LEN: usize = 4096;

/// An accepted token: its digest and the name logs and counters use instead of it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub name: String,
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The tokens the gateway accepts, several at once so a token can be rotated without downtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSet {
    entries: Vec<TokenEntry>,
}

/// Why a request was not authenticated. Each one is a 401 (RFC 6750 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <token68>`: another scheme, an empty or oversized token, bad characters,
    /// several values.
    Malformed,
    /// Well-formed, but no configured token matches.
    Invalid,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Invalid => "invalid",
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            AuthFailure::Missing => "Authentication required: send 'Authorization: Bearer <token>'",
            AuthFailure::Malformed => {
                "The Authorization header is not a bearer token ('Authorization: Bearer <token>')"
            }
            AuthFailure::Invalid => "The bearer token is not valid for this SCIM endpoint",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3): no error code when the client sent no
    /// credentials at all, `invalid_token` otherwise.
    pub fn challenge(self) -> &'static str {
        match self {
            AuthFailure::Missing => "Bearer realm=\"scim-edge\"",
            AuthFailure::Malformed | AuthFailure::Invalid => "Bearer realm=\"scim-edge\", error=\"invalid_token\"",
        }
    }
}

impl TokenSet {
    pub fn new(entries: Vec<TokenEntry>) -> Self {
        TokenSet { entries }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// Checks an `Authorization` header value; on success, the name of the matching token.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<&str, AuthFailure> {
        let header = authorization.ok_or(AuthFailure::Missing)?;
        let token = bearer_token(header).ok_or(AuthFailure::Malformed)?;
        let digest = Sha256::digest(token);
        // Index + 1 of the matching entry, 0 for none; every entry is compared.
        let mut found = 0u32;
        for (index, entry) in self.entries.iter().enumerate() {
            let candidate = u32::try_from(index).map_or(0, |i| i.saturating_add(1));
            let matches = entry.sha256.as_slice().ct_eq(digest.as_slice());
            found = u32::conditional_select(&found, &candidate, matches);
        }
        let index = usize::try_from(found).ok().and_then(|f| f.checked_sub(1));
        index.and_then(|i| self.entries.get(i)).map(|e| e.name.as_str()).ok_or(AuthFailure::Invalid)
    }
}

/// The token of a `Bearer` credential: the scheme is case-insensitive (RFC 9110 §11.1), one or
/// more spaces follow it, and the token is a token68 (RFC 6750 §2.1).
pub fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let header = header.trim_ascii();
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii_start();
    (is_token68(token) && token.len() <= MAX_TOKEN_LEN).then_some(token)
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 9110 §11.2).
pub fn is_token68(token: &[u8]) -> bool {
    let padding = token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = token.get(..token.len() - padding).unwrap_or_default();
    !body.is_empty()
        && body.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

/// SHA-256 of a token as lower-case hex: what goes in the configuration.
pub fn sha256_hex(token: &[u8]) -> String {
    Sha256::digest(token).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn entry(name: &str, token: &str) -> TokenEntry {
        TokenEntry { name: name.into(), sha256: Sha256::digest(token.as_bytes()).into() }
    }

    fn tokens() -> TokenSet {
        TokenSet::new(vec![entry("entra-2025", "old-secret"), entry("entra-2026", "new-secret")])
    }

    #[test]
    fn sha256_hex_matches_known_vector() {
        // FIPS 180-2 test vector for "abc".
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn each_configured_token_authenticates_under_its_name() {
        let set = tokens();
        assert_eq!(set.authenticate(Some(b"Bearer old-secret")), Ok("entra-2025"));
        assert_eq!(set.authenticate(Some(b"Bearer new-secret")), Ok("entra-2026"));
    }

    #[test]
    fn scheme_is_case_insensitive_and_spaces_are_tolerated() {
        let set = tokens();
        assert_eq!(set.authenticate(Some(b"bearer new-secret")), Ok("entra-2026"));
        assert_eq!(set.authenticate(Some(b"BEARER   new-secret ")), Ok("entra-2026"));
    }

    #[test]
    fn missing_malformed_and_wrong_tokens_are_told_apart() {
        let set = tokens();
        assert_eq!(set.authenticate(None), Err(AuthFailure::Missing));
        for malformed in [
            &b""[..],
            b"Bearer",
            b"Bearer ",
            b"Bearernew-secret",
            b"Basic bmV3LXNlY3JldA==",
            b"Bearer new secret",
            b"Bearer new-secret, Bearer old-secret",
            b"Bearer ===",
            b"Bearer new\xffsecret",
            b"Token new-secret",
        ] {
            assert_eq!(set.authenticate(Some(malformed)), Err(AuthFailure::Malformed), "{malformed:?}");
        }
        assert_eq!(set.authenticate(Some(b"Bearer new-secreT")), Err(AuthFailure::Invalid));
        assert_eq!(set.authenticate(Some(b"Bearer new-secret=")), Err(AuthFailure::Invalid));
    }

    #[test]
    fn oversized_tokens_are_malformed() {
        let mut header = b"Bearer ".to_vec();
        header.extend(std::iter::repeat_n(b'a', MAX_TOKEN_LEN + 1));
        assert_eq!(tokens().authenticate(Some(&header)), Err(AuthFailure::Malformed));
    }

    #[test]
    fn token68_allows_padding_only_at_the_end() {
        assert!(is_token68(b"abc-._~+/=="));
        assert!(!is_token68(b"ab=c"));
        assert!(!is_token68(b"=="));
        assert!(!is_token68(b""));
    }

    #[test]
    fn debug_output_never_shows_digests() {
        let shown = format!("{:?}", tokens());
        assert!(shown.contains("entra-2026"));
        assert!(!shown.contains("sha256"));
    }
}
