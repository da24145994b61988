//! The OAuth 2.0 token endpoint's flow (RFC 6749 §4.4): the exchange answers a client credentials
//! request itself, like a SCIM request, with the form body collected the same way (the buffer
//! filter behind the wasm filter keeps the router from answering first). The pure parts —
//! parsing, client authentication, the answers, the token — are in src/oauth.rs and src/jwt.rs.

use super::*;
use crate::jwt::{sign, Claims};
use crate::oauth::{parse_request, throttled_response, token_response, OAuthError, MAX_BODY_BYTES};
use crate::ratelimit::{Bucket, Decision, RateLimit};

/// A token request while its body arrives: what its headers said.
pub(super) struct TokenRequest {
    method: String,
    content_type: Option<String>,
    authorization: Option<Vec<u8>>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest").field("method", &self.method).finish_non_exhaustive()
    }
}

impl Exchange {
    /// Whether `path` (query aside) is the token endpoint of a configured `oauth` section.
    pub(super) fn is_token_endpoint(&self, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or_default();
        self.config.oauth.as_ref().is_some_and(|oauth| oauth.token_path == path)
    }

    pub(super) fn token_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        self.record.request_id = request_id(host.request_header("x-request-id").as_deref());
        self.record.endpoint = "token";
        let method = header_text(host, ":method").unwrap_or_default();
        for c in method.chars().filter(char::is_ascii_uppercase).take(8) {
            self.record.method.push(c);
        }
        let request = TokenRequest {
            method,
            content_type: header_text(host, "content-type"),
            authorization: host.request_header("authorization"),
        };
        // A body over the limit is refused as its first bytes over it arrive (token_body).
        if end_of_stream || request.method != "POST" {
            self.answer_token_request(host, &request, &[]);
        } else {
            self.state = State::TokenRequest(request);
            return Flow::Continue;
        }
        Flow::Pause
    }

    pub(super) fn token_body(
        &mut self,
        host: &mut dyn Host,
        request: TokenRequest,
        body_size: usize,
        end_of_stream: bool,
    ) -> Flow {
        if body_size > MAX_BODY_BYTES {
            self.token_refused(host, OAuthError::invalid_request("The request body is too large"));
        } else if end_of_stream {
            let body = if body_size == 0 { Vec::new() } else { host.request_body(body_size).unwrap_or_default() };
            self.answer_token_request(host, &request, &body);
        } else {
            self.state = State::TokenRequest(request);
        }
        Flow::Pause
    }

    pub(super) fn token_trailers(&mut self, host: &mut dyn Host, request: TokenRequest) -> Flow {
        let body = host.request_body(MAX_BODY_BYTES.saturating_add(1)).unwrap_or_default();
        if body.len() > MAX_BODY_BYTES {
            self.token_refused(host, OAuthError::invalid_request("The request body is too large"));
        } else {
            self.answer_token_request(host, &request, &body);
        }
        Flow::Pause
    }

    fn answer_token_request(&mut self, host: &mut dyn Host, request: &TokenRequest, body: &[u8]) {
        let config = Rc::clone(&self.config);
        let Some(oauth) = config.oauth.as_ref() else {
            return self.token_refused(host, OAuthError::invalid_request("No token endpoint is configured"));
        };
        let attempt = match parse_request(
            &request.method,
            request.content_type.as_deref(),
            request.authorization.as_deref(),
            body,
        ) {
            Ok(attempt) => attempt,
            Err(error) => return self.token_refused(host, error),
        };
        // Failed authentications are budgeted per client (unknown ids share one budget), in
        // shared data so every worker counts them; past the budget the secret is not even
        // checked.
        let mut budget = String::from("scim_edge.oauth.failures.");
        match oauth.client(&attempt.client_id) {
            Some(client) => budget.push_str(&client.name),
            // Not a name a client can have (names have no dot).
            None => budget.push_str(".unknown"),
        }
        let now = host.now();
        let now_ms = now.and_then(|t| u64::try_from(t.as_millis()).ok());
        if let Some(now_ms) = now_ms {
            let stored = host.shared_get(&budget).0;
            if let (_, Decision::Deny { retry_after_s }) =
                oauth.failure_budget.take(stored.as_deref().and_then(Bucket::decode), now_ms)
            {
                host.count(Counter::TokensRefused("throttled"));
                self.record.note = "throttled";
                return self.reply(host, throttled_response(retry_after_s));
            }
        }
        let Some(client) = oauth.authenticate(&attempt) else {
            if let Some(now_ms) = now_ms {
                self.charge_failure(host, &budget, &oauth.failure_budget, now_ms);
            }
            return self.token_refused(host, OAuthError::invalid_client(attempt.basic));
        };
        self.record.auth = Some(format!("client={}", client.name));
        // No clock, no expiry: no token.
        let (Some(now), Some(key)) = (now, oauth.signing_key()) else {
            self.record.note = "no_clock";
            let error = OAuthError {
                status: 500,
                error: "server_error",
                description: "No token can be issued now",
                basic: false,
            };
            return self.reply(host, error.into_response());
        };
        let iat = now.as_secs();
        let claims = Claims {
            iss: oauth.issuer.clone(),
            aud: oauth.audience.clone(),
            client_id: client.client_id.clone(),
            iat,
            exp: iat.saturating_add(oauth.lifetime_s),
        };
        let token = sign(key, &claims, &token_id(now, self.context_id, &client.client_id));
        host.count(Counter::TokensIssued(&client.name));
        self.reply(host, token_response(&token, oauth.lifetime_s));
    }

    /// Takes one failed attempt from the client's budget (the same compare-and-swap update as the
    /// upstream's budget; nothing ever blocks a failure budget, so no block is cut).
    fn charge_failure(&mut self, host: &mut dyn Host, key: &str, limit: &RateLimit, now_ms: u64) {
        crate::ratelimit::update(host, key, now_ms, u64::MAX, |bucket| limit.take(bucket, now_ms));
    }

    fn token_refused(&mut self, host: &mut dyn Host, error: OAuthError) {
        host.count(Counter::TokensRefused(error.error));
        self.record.note = error.error;
        self.reply(host, error.into_response());
    }
}

/// A unique id for a token (RFC 9068 §2.2 `jti`): the time in nanoseconds, the stream and the
/// client, hashed.
fn token_id(now: Duration, context_id: u32, client_id: &str) -> String {
    let mut seed = Vec::with_capacity(20 + client_id.len());
    seed.extend_from_slice(&now.as_nanos().to_le_bytes());
    seed.extend_from_slice(&context_id.to_le_bytes());
    seed.extend_from_slice(client_id.as_bytes());
    let mut id = crate::auth::sha256_hex(&seed);
    id.truncate(32);
    id
}
