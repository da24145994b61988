//! OAuth 2.0 client credentials at the edge (RFC 6749 §4.4): the token endpoint's configuration,
//! request parsing, client authentication and answers. The edge issues its own access tokens
//! ([`crate::jwt`]) to the clients it is configured with, so Entra can use "OAuth 2.0 client
//! credentials" against an upstream that only knows API keys.
//!
//! Clients are configured by id and the SHA-256 digest of their secret, never the secret; the
//! presented secret is hashed and compared in constant time, like the static tokens
//! ([`crate::auth`]). The signing keys come from the VM's environment.

use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::{check_base_path, decode_sha256, error, ConfigError, EnvLookup, Fields, EMPTY_SHA256};
use crate::http::Response;
use crate::jwt::{Key, MIN_KEY_LEN};
use crate::ratelimit::{Pacing, RateLimit};

pub const DEFAULT_TOKEN_PATH: &str = "/oauth2/token";
pub const DEFAULT_ISSUER: &str = "scim-edge";
pub const DEFAULT_AUDIENCE: &str = "scim-edge";
/// Microsoft's validation suite expects access tokens to live 60 to 360 minutes.
pub const LIFETIME_RANGE_S: std::ops::RangeInclusive<u64> = 3_600..=21_600;
pub const DEFAULT_LIFETIME_S: u64 = 3_600;
/// Failed client authentications allowed per client: 5 a minute, up to 10 at once.
pub const DEFAULT_FAILURE_BUDGET: RateLimit = RateLimit { requests_per_minute: 5, burst: 10, pacing: Pacing::OFF };
/// Largest token request body read; a client credentials request is well under 1 KiB.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
const MAX_CLIENT_ID_LEN: usize = 256;
const MAX_SECRET_LEN: usize = 1024;

/// A client allowed to get tokens: its name (for logs and counters), id and secret digest.
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    pub name: String,
    pub client_id: String,
    pub secret_sha256: [u8; 32],
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The compiled `oauth` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuth {
    pub token_path: String,
    pub issuer: String,
    pub audience: String,
    pub lifetime_s: u64,
    pub clients: Vec<Client>,
    /// Every key verifies; `keys[signing]` signs.
    pub keys: Vec<Key>,
    pub signing: usize,
    pub failure_budget: RateLimit,
}

/// An OAuth error answer (RFC 6749 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: &'static str,
    /// The client authenticated with Basic: a 401 carries `WWW-Authenticate: Basic`.
    pub basic: bool,
}

impl OAuthError {
    pub fn invalid_request(description: &'static str) -> Self {
        OAuthError { status: 400, error: "invalid_request", description, basic: false }
    }

    pub fn invalid_client(basic: bool) -> Self {
        OAuthError { status: 401, error: "invalid_client", description: "Client authentication failed", basic }
    }

    pub fn unsupported_grant_type() -> Self {
        OAuthError {
            status: 400,
            error: "unsupported_grant_type",
            description: "Only grant_type=client_credentials is supported",
            basic: false,
        }
    }

    pub fn into_response(self) -> Response {
        let mut response = json_response(self.status, error_body(self.error, self.description));
        if self.status == 401 {
            // RFC 6749 §5.2: a client that used the Authorization header gets its scheme back.
            let challenge = if self.basic { "Basic realm=\"scim-edge\"" } else { "Bearer realm=\"scim-edge\"" };
            response.headers.push(("www-authenticate".to_string(), challenge.to_string()));
        }
        response
    }
}

/// A successful token response (RFC 6749 §5.1).
/// The token is base64url and dots (src/jwt.rs), so it needs no JSON escaping.
pub fn token_response(access_token: &str, lifetime_s: u64) -> Response {
    let body = format!(r#"{{"access_token":"{access_token}","token_type":"Bearer","expires_in":{lifetime_s}}}"#);
    json_response(200, body)
}

/// The error code and description are this module's constants, without quotes or backslashes.
fn error_body(error: &str, description: &str) -> String {
    format!(r#"{{"error":"{error}","error_description":"{description}"}}"#)
}

/// Too many failed authentications for this client: 429 with `Retry-After`, in the error shape
/// of RFC 6749 §5.2 (the RFC defines no code for it; `invalid_client` tells the client not to
/// retry with the same secret).
pub fn throttled_response(retry_after_s: u64) -> Response {
    let body = error_body("invalid_client", "Too many failed client authentications; retry later");
    let mut response = json_response(429, body);
    response.headers.push(("retry-after".to_string(), retry_after_s.to_string()));
    response
}

/// RFC 6749 §5.1: token responses are JSON and never cached.
fn json_response(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![
            ("content-type".to_string(), "application/json;charset=UTF-8".to_string()),
            ("cache-control".to_string(), "no-store".to_string()),
            ("pragma".to_string(), "no-cache".to_string()),
        ],
        body: body.into_bytes(),
    }
}

/// The client credentials a token request presents.
#[derive(Clone, PartialEq, Eq)]
pub struct Attempt {
    pub client_id: String,
    pub secret: String,
    /// Sent as `client_secret_basic` (else `client_secret_post`).
    pub basic: bool,
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt").field("basic", &self.basic).finish_non_exhaustive()
    }
}

/// Reads a client credentials token request (RFC 6749 §4.4.2): a POST with a form body carrying
/// `grant_type=client_credentials`, the client authenticated by exactly one of
/// `client_secret_basic` and `client_secret_post` (§2.3.1).
pub fn parse_request(
    method: &str,
    content_type: Option<&str>,
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Result<Attempt, OAuthError> {
    if method != "POST" {
        return Err(OAuthError::invalid_request("The token endpoint takes POST (RFC 6749 §3.2)"));
    }
    let form = content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form {
        return Err(OAuthError::invalid_request("The body must be application/x-www-form-urlencoded"));
    }
    let params =
        parse_form(body).ok_or(OAuthError::invalid_request("The form body is malformed or repeats a parameter"))?;
    let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    match param("grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some("client_credentials") => {}
        Some(_) => return Err(OAuthError::unsupported_grant_type()),
    }
    let posted = match (param("client_id"), param("client_secret")) {
        (Some(id), Some(secret)) => Some((id.to_string(), secret.to_string())),
        (None, None) => None,
        _ => return Err(OAuthError::invalid_client(false)),
    };
    let attempt = match (authorization, posted) {
        (Some(header), None) => {
            let (client_id, secret) = basic_credentials(header).ok_or(OAuthError::invalid_client(true))?;
            Attempt { client_id, secret, basic: true }
        }
        (None, Some((client_id, secret))) => Attempt { client_id, secret, basic: false },
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request("Use one client authentication method (RFC 6749 §2.3)"))
        }
        (None, None) => return Err(OAuthError::invalid_client(false)),
    };
    if attempt.client_id.is_empty()
        || attempt.client_id.len() > MAX_CLIENT_ID_LEN
        || attempt.secret.len() > MAX_SECRET_LEN
    {
        return Err(OAuthError::invalid_client(attempt.basic));
    }
    Ok(attempt)
}

/// `application/x-www-form-urlencoded` (WHATWG URL §5.1): `&`-separated `name=value`, `+` for
/// space, percent escapes; `None` when a value is not UTF-8 or a name repeats (RFC 6749 §3.2).
pub fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let mut params: Vec<(String, String)> = Vec::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (pair.get(..at)?, pair.get(at + 1..)?),
            None => (pair, &b""[..]),
        };
        let (name, value) = (form_decode(name)?, form_decode(value)?);
        if params.iter().any(|(n, _)| *n == name) {
            return None;
        }
        params.push((name, value));
    }
    Some(params)
}

/// The same calls as the SCIM query string's decoding (src/scim/query.rs), so the filter carries
/// that code once.
fn form_decode(text: &[u8]) -> Option<String> {
    let spaced = std::str::from_utf8(text).ok()?.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8().map(|s| s.into_owned()).ok()
}

/// The client id and secret of `Authorization: Basic` (RFC 7617), each form-urlencoded first as
/// RFC 6749 §2.3.1 requires.
pub fn basic_credentials(header: &[u8]) -> Option<(String, String)> {
    let header = header.trim_ascii();
    let (scheme, rest) = header.split_at_checked(5)?;
    if !scheme.eq_ignore_ascii_case(b"basic") || rest.first() != Some(&b' ') {
        return None;
    }
    let decoded = crate::base64url::decode_standard(rest.trim_ascii_start())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let (id, secret) = (decoded.get(..colon)?, decoded.get(colon + 1..)?);
    Some((form_decode(id)?, form_decode(secret)?))
}

impl OAuth {
    /// The configured client this attempt names, if its secret matches. The secret's digest is
    /// compared with every client's in constant time.
    pub fn authenticate(&self, attempt: &Attempt) -> Option<&Client> {
        let digest = Sha256::digest(attempt.secret.as_bytes());
        let mut found = 0u32;
        for (index, client) in self.clients.iter().enumerate() {
            let candidate = u32::try_from(index).map_or(0, |i| i.saturating_add(1));
            let id_matches = client.client_id.as_bytes().ct_eq(attempt.client_id.as_bytes());
            let secret_matches = client.secret_sha256.as_slice().ct_eq(digest.as_slice());
            found = u32::conditional_select(&found, &candidate, id_matches & secret_matches);
        }
        usize::try_from(found).ok().and_then(|f| f.checked_sub(1)).and_then(|i| self.clients.get(i))
    }

    /// The client with this id (whatever secret it presented).
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    pub fn signing_key(&self) -> Option<&Key> {
        self.keys.get(self.signing)
    }

    /// Compiles the `oauth` section; `None` when absent.
    pub(crate) fn from_config(root: &Fields, scim_prefix: &str, env: EnvLookup) -> Result<Option<OAuth>, ConfigError> {
        let Some(value) = root.get("oauth") else {
            return Ok(None);
        };
        let fields = Fields::of("oauth", value)?;
        fields.deny_unknown(&[
            "token_path",
            "issuer",
            "audience",
            "token_lifetime_s",
            "clients",
            "signing_keys",
            "signing_kid",
            "failed_auth_budget",
        ])?;
        let token_path = match fields.string("token_path")? {
            Some(path) => check_base_path(path, false).map_err(|reason| fields.error("token_path", reason))?,
            None => DEFAULT_TOKEN_PATH.to_string(),
        };
        if token_path == scim_prefix || token_path.starts_with(&format!("{scim_prefix}/")) {
            return Err(fields.error("token_path", "must lie outside scim_prefix"));
        }
        let issuer = fields.string("issuer")?.unwrap_or(DEFAULT_ISSUER).to_string();
        let audience = fields.string("audience")?.unwrap_or(DEFAULT_AUDIENCE).to_string();
        for (key, value) in [("issuer", &issuer), ("audience", &audience)] {
            if value.is_empty() || !crate::jwt::is_json_safe(value) {
                return Err(fields.error(key, "1 or more printable characters, no quote or backslash"));
            }
        }
        let lifetime_s = fields.integer_in("token_lifetime_s", LIFETIME_RANGE_S)?.unwrap_or(DEFAULT_LIFETIME_S);
        let clients = clients(&fields)?;
        let keys = keys(&fields, env)?;
        let signing = match fields.string("signing_kid")? {
            None => 0,
            Some(kid) => keys
                .iter()
                .position(|k| k.kid == kid)
                .ok_or_else(|| fields.error("signing_kid", "names no key of signing_keys"))?,
        };
        let failure_budget = match fields.get("failed_auth_budget") {
            None => DEFAULT_FAILURE_BUDGET,
            Some(value) => {
                let budget = Fields::of("oauth.failed_auth_budget", value)?;
                budget.deny_unknown(&["per_minute", "burst"])?;
                let per_minute = budget.integer_in("per_minute", 1..=10_000)?.unwrap_or(5);
                let burst = budget.integer_in("burst", 1..=10_000)?.unwrap_or(per_minute);
                RateLimit {
                    requests_per_minute: u32::try_from(per_minute).unwrap_or(u32::MAX),
                    burst: u32::try_from(burst).unwrap_or(u32::MAX),
                    // Failed logins are refused past the budget, never made to wait.
                    pacing: Pacing::OFF,
                }
            }
        };
        Ok(Some(OAuth { token_path, issuer, audience, lifetime_s, clients, keys, signing, failure_budget }))
    }
}

/// A name that becomes part of metric names.
pub(crate) fn is_counter_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
}

fn clients(oauth: &Fields) -> Result<Vec<Client>, ConfigError> {
    let items = oauth.array("clients")?.ok_or_else(|| oauth.error("clients", "required: at least one client"))?;
    if items.is_empty() {
        return Err(oauth.error("clients", "empty: no client could ever get a token"));
    }
    let mut clients: Vec<Client> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let fields = Fields::of(&format!("oauth.clients[{index}]"), item)?;
        fields.deny_unknown(&["name", "client_id", "secret_sha256"])?;
        let name = fields.required_string("name")?;
        if !is_counter_name(name) {
            return Err(
                fields.error("name", "1 to 64 characters from A-Z a-z 0-9 - _ (it becomes part of metric names)")
            );
        }
        let client_id = fields.required_string("client_id")?;
        if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_LEN || !crate::jwt::is_json_safe(client_id) {
            return Err(fields.error("client_id", "1 to 256 printable characters, no quote or backslash"));
        }
        let secret_sha256 = decode_sha256(fields.required_string("secret_sha256")?).ok_or_else(|| {
            fields
                .error("secret_sha256", "expected the SHA-256 digest of the client secret as 64 hexadecimal characters")
        })?;
        if secret_sha256 == EMPTY_SHA256 {
            return Err(fields.error("secret_sha256", "is the digest of the empty string"));
        }
        if clients.iter().any(|c| c.name == name) {
            return Err(fields.error("name", "duplicate client name"));
        }
        if clients.iter().any(|c| c.client_id == client_id) {
            return Err(fields.error("client_id", "duplicate client id"));
        }
        clients.push(Client { name: name.to_string(), client_id: client_id.to_string(), secret_sha256 });
    }
    Ok(clients)
}

fn keys(oauth: &Fields, env: EnvLookup) -> Result<Vec<Key>, ConfigError> {
    let items = oauth
        .array("signing_keys")?
        .ok_or_else(|| oauth.error("signing_keys", "required: at least one {kid, secret_env}"))?;
    if items.is_empty() {
        return Err(oauth.error("signing_keys", "empty: no token could be signed"));
    }
    let mut keys: Vec<Key> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let fields = Fields::of(&format!("oauth.signing_keys[{index}]"), item)?;
        fields.deny_unknown(&["kid", "secret_env"])?;
        let kid = fields.required_string("kid")?;
        if !is_counter_name(kid) {
            return Err(
                fields.error("kid", "1 to 64 characters from A-Z a-z 0-9 - _ (it becomes part of metric names)")
            );
        }
        if keys.iter().any(|k| k.kid == kid) {
            return Err(fields.error("kid", "duplicate key id"));
        }
        let name = fields.required_string("secret_env")?;
        let Some(secret) = env(name) else {
            return Err(error(
                fields.path("secret_env"),
                format!("environment variable {name} is not set in the VM (list it in vm_config.environment_variables.host_env_keys)"),
            ));
        };
        let secret = secret.trim().as_bytes().to_vec();
        if secret.len() < MIN_KEY_LEN {
            return Err(fields.error("secret_env", format!("the key must be at least {MIN_KEY_LEN} bytes")));
        }
        keys.push(Key { kid: kid.to_string(), secret });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    /// RFC 7617's encoding, written out for the test (the module only decodes).
    fn basic(id: &str, secret: &str) -> Vec<u8> {
        let mut encoded =
            crate::base64url::url(format!("{id}:{secret}").as_bytes()).replace('-', "+").replace('_', "/");
        while !encoded.len().is_multiple_of(4) {
            encoded.push('=');
        }
        format!("Basic {encoded}").into_bytes()
    }

    #[test]
    fn forms_decode_plus_and_percent_escapes() {
        let params = parse_form(b"grant_type=client_credentials&client_id=a%2Bb+c&empty=&flag&&").unwrap();
        assert_eq!(
            params,
            [
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), "a+b c".into()),
                ("empty".into(), String::new()),
                ("flag".into(), String::new()),
            ]
        );
        assert_eq!(parse_form(b"a=1&a=2"), None, "a repeated parameter");
        assert_eq!(parse_form(b"a=%ff"), None, "not UTF-8");
        assert_eq!(parse_form(b""), Some(vec![]));
    }

    #[test]
    fn basic_credentials_are_form_decoded_inside_base64() {
        assert_eq!(
            basic_credentials(&basic("my%3Aclient", "s%C3%A9cret+x")),
            Some(("my:client".into(), "sécret x".into()))
        );
        assert_eq!(basic_credentials(b"basic  Y2xpZW50OnNlY3JldA=="), Some(("client".into(), "secret".into())));
        assert_eq!(basic_credentials(b"Basic Y2xpZW50"), None, "no colon");
        assert_eq!(basic_credentials(b"Basic !!!"), None);
        assert_eq!(basic_credentials(b"Bearer Y2xpZW50OnNlY3JldA=="), None);
        assert_eq!(basic_credentials(b"BasicY2xpZW50OnNlY3JldA=="), None);
    }

    #[test]
    fn both_client_authentication_methods_are_read() {
        let body = b"grant_type=client_credentials&client_id=c1&client_secret=s%261";
        let posted = parse_request("POST", FORM, None, body).unwrap();
        assert_eq!((posted.client_id.as_str(), posted.secret.as_str(), posted.basic), ("c1", "s&1", false));
        let basic_auth = basic("c1", "s1");
        let sent = parse_request(
            "POST",
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            Some(&basic_auth),
            b"grant_type=client_credentials",
        )
        .unwrap();
        assert_eq!((sent.client_id.as_str(), sent.secret.as_str(), sent.basic), ("c1", "s1", true));
    }

    #[test]
    fn bad_requests_get_the_rfc_6749_error_codes() {
        let error = |method, ct, auth: Option<&[u8]>, body: &[u8]| parse_request(method, ct, auth, body).unwrap_err();
        let ok_body = b"grant_type=client_credentials&client_id=c&client_secret=s";
        assert_eq!(error("GET", FORM, None, ok_body).error, "invalid_request");
        assert_eq!(error("POST", Some("application/json"), None, ok_body).error, "invalid_request");
        assert_eq!(error("POST", None, None, ok_body).error, "invalid_request");
        assert_eq!(error("POST", FORM, None, b"client_id=c&client_secret=s").error, "invalid_request");
        assert_eq!(
            error("POST", FORM, None, b"grant_type=password&client_id=c&client_secret=s").error,
            "unsupported_grant_type"
        );
        assert_eq!(
            error("POST", FORM, None, b"grant_type=client_credentials&grant_type=client_credentials").error,
            "invalid_request"
        );
        let basic_auth = basic("c", "s");
        assert_eq!(error("POST", FORM, Some(&basic_auth), ok_body).error, "invalid_request", "two methods");
        let none = error("POST", FORM, None, b"grant_type=client_credentials");
        assert_eq!((none.status, none.error, none.basic), (401, "invalid_client", false));
        let bad_basic = error("POST", FORM, Some(b"Basic ???"), b"grant_type=client_credentials");
        assert_eq!((bad_basic.status, bad_basic.error, bad_basic.basic), (401, "invalid_client", true));
        assert_eq!(error("POST", FORM, None, b"grant_type=client_credentials&client_id=c").error, "invalid_client");
    }

    #[test]
    fn error_answers_are_json_never_cached_and_challenge_basic_clients() {
        let response = OAuthError::invalid_client(true).into_response();
        assert_eq!(response.status, 401);
        assert_eq!(response.header("cache-control"), Some("no-store"));
        assert_eq!(response.header("www-authenticate"), Some("Basic realm=\"scim-edge\""));
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["error"], "invalid_client");
        let ok = token_response("t.o.k", 3600);
        assert_eq!(ok.header("cache-control"), Some("no-store"));
        let body: serde_json::Value = serde_json::from_slice(&ok.body).unwrap();
        assert_eq!(body, serde_json::json!({"access_token": "t.o.k", "token_type": "Bearer", "expires_in": 3600}));
        assert_eq!(throttled_response(12).header("retry-after"), Some("12"));
    }

    #[test]
    fn a_client_authenticates_only_with_its_own_secret() {
        let client = |name: &str, id: &str, secret: &str| Client {
            name: name.into(),
            client_id: id.into(),
            secret_sha256: Sha256::digest(secret.as_bytes()).into(),
        };
        let oauth = OAuth {
            token_path: DEFAULT_TOKEN_PATH.into(),
            issuer: DEFAULT_ISSUER.into(),
            audience: DEFAULT_AUDIENCE.into(),
            lifetime_s: 3600,
            clients: vec![client("entra", "id-1", "secret-1"), client("backup", "id-2", "secret-2")],
            keys: vec![],
            signing: 0,
            failure_budget: DEFAULT_FAILURE_BUDGET,
        };
        let attempt = |id: &str, secret: &str| Attempt { client_id: id.into(), secret: secret.into(), basic: false };
        assert_eq!(oauth.authenticate(&attempt("id-1", "secret-1")).map(|c| c.name.as_str()), Some("entra"));
        assert_eq!(oauth.authenticate(&attempt("id-2", "secret-2")).map(|c| c.name.as_str()), Some("backup"));
        assert_eq!(oauth.authenticate(&attempt("id-1", "secret-2")), None, "another client's secret");
        assert_eq!(oauth.authenticate(&attempt("id-3", "secret-1")), None);
        assert!(!format!("{:?}", attempt("id-1", "secret-1")).contains("secret-1"));
        assert!(!format!("{oauth:?}").contains("secret"));
    }

    fn config(oauth: serde_json::Value) -> Result<crate::config::Config, ConfigError> {
        let json = serde_json::json!({
            "version": 1,
            "upstream": {"cluster": "c", "authority": "a", "base_path": "/v2", "bearer_token": "k"},
            "oauth": oauth,
        });
        let env = |name: &str| match name {
            "KEY_A" => Some("a".repeat(32)),
            "KEY_B" => Some("b".repeat(40)),
            "SHORT" => Some("short".to_string()),
            _ => None,
        };
        crate::config::Config::from_json(json.to_string().as_bytes(), &env)
    }

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "clients": [{"name": "entra", "client_id": "id-1", "secret_sha256": crate::auth::sha256_hex(b"s")}],
            "signing_keys": [{"kid": "a", "secret_env": "KEY_A"}, {"kid": "b", "secret_env": "KEY_B"}],
        })
    }

    #[test]
    fn the_oauth_section_compiles_with_defaults_and_needs_no_static_tokens() {
        let oauth = config(valid()).unwrap().oauth.unwrap();
        assert_eq!((oauth.token_path.as_str(), oauth.lifetime_s, oauth.signing), (DEFAULT_TOKEN_PATH, 3600, 0));
        assert_eq!(oauth.keys.len(), 2);
        let mut other = valid();
        other["signing_kid"] = serde_json::json!("b");
        other["token_lifetime_s"] = serde_json::json!(21_600);
        let oauth = config(other).unwrap().oauth.unwrap();
        assert_eq!((oauth.signing_key().unwrap().kid.as_str(), oauth.lifetime_s), ("b", 21_600));
    }

    #[test]
    fn oauth_errors_name_the_field_and_never_a_key() {
        type Mutation = fn(&mut serde_json::Value);
        let cases: [(&str, Mutation); 10] = [
            ("oauth.token_lifetime_s", |v| v["token_lifetime_s"] = serde_json::json!(3599)),
            ("oauth.token_lifetime_s", |v| v["token_lifetime_s"] = serde_json::json!(21_601)),
            ("oauth.token_path", |v| v["token_path"] = serde_json::json!("/api/scim/v2/token")),
            ("oauth.signing_kid", |v| v["signing_kid"] = serde_json::json!("c")),
            ("oauth.signing_keys[0].secret_env", |v| v["signing_keys"][0]["secret_env"] = serde_json::json!("UNSET")),
            ("oauth.signing_keys[0].secret_env", |v| v["signing_keys"][0]["secret_env"] = serde_json::json!("SHORT")),
            ("oauth.signing_keys[1].kid", |v| v["signing_keys"][1]["kid"] = serde_json::json!("a")),
            ("oauth.clients[0].secret_sha256", |v| v["clients"][0]["secret_sha256"] = serde_json::json!("s")),
            ("oauth.clients", |v| v["clients"] = serde_json::json!([])),
            ("oauth.secret", |v| v["secret"] = serde_json::json!("x")),
        ];
        for (field, mutate) in cases {
            let mut value = valid();
            mutate(&mut value);
            let error = config(value).unwrap_err();
            assert_eq!(error.field, field);
            assert!(!error.to_string().contains("aaaa") && !error.to_string().contains("short"), "{error}");
        }
    }
}
