//! Which credential admits a SCIM request. Three methods, each optional, all usable together:
//! a static bearer token ([`crate::auth`]), an access token the edge issued at its token endpoint
//! ([`crate::oauth`], [`crate::jwt`]), or Entra's own JWT verified by Envoy's `jwt_authn`
//! ([`crate::entra`]). The answer names the token, client or tenant, never the credential.

use crate::auth::{bearer_token, AuthFailure};
use crate::config::Config;
use crate::exchange::Host;
use crate::metrics::Counter;

/// Who a request was admitted as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted<'a> {
    /// A static token, by name.
    Token(&'a str),
    /// An access token issued to this client (by name).
    Client(&'a str),
    /// Entra's JWT from this tenant (by name).
    Tenant(&'a str),
}

impl Admitted<'_> {
    /// `token=<name>`, `client=<name>` or `tenant=<name>`, for the request's log line.
    pub fn label(&self) -> String {
        let (key, name) = match self {
            Admitted::Token(name) => ("token=", name),
            Admitted::Client(name) => ("client=", name),
            Admitted::Tenant(name) => ("tenant=", name),
        };
        let mut label = String::with_capacity(key.len() + name.len());
        label.push_str(key);
        label.push_str(name);
        label
    }

    pub fn counter(&self) -> Counter<'_> {
        match self {
            Admitted::Token(name) => Counter::AuthAccepted(name),
            Admitted::Client(name) => Counter::AuthAcceptedClient(name),
            Admitted::Tenant(name) => Counter::AuthAcceptedTenant(name),
        }
    }
}

/// Authenticates a SCIM request. With `entra_jwt` configured, a payload `jwt_authn` verified
/// decides alone (admitted or 401, never a fallback to the header); otherwise the bearer token
/// is a static token or one of the edge's access tokens. Every refusal is the same 401.
pub fn admit<'c>(config: &'c Config, host: &dyn Host) -> Result<Admitted<'c>, AuthFailure> {
    if let Some(entra) = &config.entra_jwt {
        let tid = host.property(&entra.claim_path("tid"));
        let appid = host.property(&entra.claim_path("appid"));
        if tid.is_some() || appid.is_some() {
            return match entra.admit(tid.as_deref(), appid.as_deref()) {
                Some(tenant) => Ok(Admitted::Tenant(&tenant.name)),
                None => Err(AuthFailure::Invalid),
            };
        }
    }
    let authorization = host.request_header("authorization");
    let failure = match config.tokens.authenticate(authorization.as_deref()) {
        Ok(name) => return Ok(Admitted::Token(name)),
        Err(failure) => failure,
    };
    if let (Some(oauth), AuthFailure::Invalid) = (&config.oauth, failure) {
        let token = authorization.as_deref().and_then(bearer_token).unwrap_or_default();
        // Without a clock no expiry can be checked: refused.
        if let (true, Some(now)) = (crate::jwt::looks_like_jwt(token), host.now()) {
            let now_s = now.as_secs();
            if let Ok(claims) = crate::jwt::verify(token, &oauth.keys, &oauth.issuer, &oauth.audience, now_s) {
                // A client removed from the configuration loses its tokens at once.
                if let Some(client) = oauth.client(&claims.client_id) {
                    return Ok(Admitted::Client(&client.name));
                }
            }
        }
    }
    Err(failure)
}
