//! SCIM error responses (RFC 7644 §3.12).
//!
//! Every answer the gateway gives on its own — authentication failures, unknown endpoints,
//! bodies it refuses, upstream failures — is one of these, so an Entra admin reading the
//! provisioning log sees a SCIM error with a `detail` that says what went wrong. Details name
//! attributes, methods and endpoints, never a value the client sent.

use crate::http::{Response, SCIM_MEDIA_TYPE};

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Most characters of client (or upstream) text an error detail shows.
pub const SHOWN_CHARS: usize = 100;

/// Text that did not come from the gateway (a member name, a path, a parameter, an upstream's
/// `detail`) as an error detail may show it: at most [`SHOWN_CHARS`] characters, then `…`, and
/// control characters as U+FFFD. Every echo of such text in a detail goes through here.
pub fn shown(text: &str) -> String {
    shown_within(text, SHOWN_CHARS)
}

/// [`shown`] with another bound.
pub fn shown_within(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4 + 3));
    for (count, c) in text.chars().enumerate() {
        if count == max_chars {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { char::REPLACEMENT_CHARACTER } else { c });
    }
    out
}

/// The `scimType` keywords of RFC 7644 §3.12, Table 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    pub const ALL: [ScimType; 10] = [
        ScimType::InvalidFilter,
        ScimType::TooMany,
        ScimType::Uniqueness,
        ScimType::Mutability,
        ScimType::InvalidSyntax,
        ScimType::InvalidPath,
        ScimType::NoTarget,
        ScimType::InvalidValue,
        ScimType::InvalidVers,
        ScimType::Sensitive,
    ];

    /// The keyword, if `text` is one of RFC 7644's.
    pub fn parse(text: &str) -> Option<ScimType> {
        ScimType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

/// An error the gateway answers itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
    /// Extra response headers (`WWW-Authenticate`, `Allow`, `Retry-After`...).
    pub headers: Vec<(&'static str, String)>,
}

impl ScimError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        ScimError { status, scim_type: None, detail: detail.into(), headers: Vec::new() }
    }

    /// A 400 with the given `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError { scim_type: Some(scim_type), ..ScimError::new(400, detail) }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The RFC 7644 §3.12 body: `status` is a string there, `scimType` only when set.
    pub fn body(&self) -> Vec<u8> {
        let mut body = serde_json::Map::new();
        body.insert("schemas".into(), serde_json::Value::Array(vec![ERROR_SCHEMA.into()]));
        body.insert("status".into(), self.status.to_string().into());
        if let Some(scim_type) = self.scim_type {
            body.insert("scimType".into(), scim_type.as_str().into());
        }
        body.insert("detail".into(), self.detail.clone().into());
        // Serialising a map of strings cannot fail; an empty body would still be a valid reply.
        serde_json::to_vec(&body).unwrap_or_default()
    }

    pub fn into_response(self) -> Response {
        let body = self.body();
        let mut headers = vec![("content-type".to_string(), SCIM_MEDIA_TYPE.to_string())];
        for (name, value) in self.headers {
            headers.push((name.to_string(), value));
        }
        Response { status: self.status, headers, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn body_follows_rfc7644_section_3_12() {
        let error = ScimError::bad_request(ScimType::InvalidSyntax, "the body is not \"JSON\"");
        let body: serde_json::Value = serde_json::from_slice(&error.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidSyntax",
                "detail": "the body is not \"JSON\"",
            })
        );
    }

    #[test]
    fn shown_text_is_bounded_and_has_no_control_characters() {
        assert_eq!(shown("userName"), "userName");
        assert_eq!(shown(&"x".repeat(300)).chars().count(), SHOWN_CHARS + 1);
        assert!(shown(&"x".repeat(300)).ends_with('…'));
        assert_eq!(shown("a\u{0}b\nc\u{7f}"), "a\u{fffd}b\u{fffd}c\u{fffd}");
        assert_eq!(shown_within("élan", 2), "él…");
        assert_eq!(ScimType::parse("uniqueness"), Some(ScimType::Uniqueness));
        assert_eq!(ScimType::parse("Uniqueness"), None);
    }

    #[test]
    fn scim_type_is_left_out_when_unset() {
        let body: serde_json::Value = serde_json::from_slice(&ScimError::new(404, "no such endpoint").body()).unwrap();
        assert_eq!(body.get("scimType"), None);
        assert_eq!(body["status"], "404");
    }

    #[test]
    fn response_carries_scim_media_type_and_extra_headers() {
        let response = ScimError::new(401, "no token")
            .with_header("www-authenticate", "Bearer realm=\"scim-edge\"")
            .into_response();
        assert_eq!(response.status, 401);
        assert_eq!(response.header("content-type"), Some("application/scim+json"));
        assert_eq!(response.header("www-authenticate"), Some("Bearer realm=\"scim-edge\""));
    }
}
