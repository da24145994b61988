//! The few HTTP notions the gateway reasons about: methods, media types, and the response it
//! hands back to the proxy.

/// RFC 7644 §8.1: SCIM messages are `application/scim+json`.
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";

/// The methods RFC 7644 §3 gives meaning to. Anything else is answered 405 on a SCIM endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// HTTP methods are case-sensitive (RFC 9110 §9.1): `get` is not `GET`.
    pub fn parse(method: &str) -> Option<Method> {
        match method {
            "GET" => Some(Method::Get),
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "PATCH" => Some(Method::Patch),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Methods whose SCIM request carries a resource or PatchOp body (RFC 7644 §3.3, §3.5).
    pub fn carries_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

/// Whether a `Content-Type` value is a JSON media type the gateway accepts for a SCIM body:
/// `application/scim+json` (RFC 7644 §8.1) or `application/json`, parameters allowed.
pub fn is_scim_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(SCIM_MEDIA_TYPE) || essence.eq_ignore_ascii_case("application/json")
}

/// A complete response for the client, built by the gateway or relayed from the upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// An answer the edge builds itself: a JSON document as `application/scim+json`.
    pub fn scim_json(status: u16, document: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".to_string(), SCIM_MEDIA_TYPE.to_string())],
            body: serde_json::to_vec(document).unwrap_or_default(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The class of a status for counters and logs: `2xx`, `4xx`...
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn methods_are_case_sensitive() {
        assert_eq!(Method::parse("PATCH"), Some(Method::Patch));
        assert_eq!(Method::parse("patch"), None);
        assert_eq!(Method::parse("HEAD"), None);
    }

    #[test]
    fn scim_and_plain_json_media_types_are_accepted_with_parameters() {
        assert!(is_scim_json("application/scim+json"));
        assert!(is_scim_json("Application/SCIM+JSON; charset=utf-8"));
        assert!(is_scim_json("application/json;charset=utf-8"));
        assert!(!is_scim_json("text/plain"));
        assert!(!is_scim_json("application/x-www-form-urlencoded"));
        assert!(!is_scim_json("application/scim+json-evil"));
        assert!(!is_scim_json(""));
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(201), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
    }
}
