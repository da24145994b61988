//! `POST /.search` bodies (RFC 7644 §3.4.3): a SearchRequest carries the query parameters of
//! §3.4.2 as JSON. It is checked by the same rules as the query string and forwarded canonical.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

use super::normalisation::{Changes, Normalisation};
use super::query::{parse_query, Query};
use super::rules::AttributeRules;
use super::value::{invalid_syntax, invalid_value, parse_object, take_message_schema};
use crate::http::Method;
use crate::scim_error::ScimError;

pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The SearchRequest members and the query parameters they stand for.
const MEMBERS: &[&str] = &["filter", "startIndex", "count", "sortBy", "sortOrder", "attributes", "excludedAttributes"];

/// Validates a SearchRequest for one resource type (`/Users/.search`: one policy) or for all of
/// them (`/.search`: the policies in order; the first whose schema resolves every attribute
/// applies), and restricts it to the mapping. `None` when it can match nothing the upstream stores;
/// otherwise the query and the policy that applies.
pub fn prepare_search<'p, P: AttributeRules>(
    policies: &[&'p P],
    body: &[u8],
    changes: &mut Changes,
) -> Result<Option<(Query, &'p P)>, ScimError> {
    let mut document = parse_object(body)?;
    take_message_schema(&mut document, SEARCH_REQUEST_URN)?;
    // `member=value` pairs joined by `&` (each pair is non-empty).
    let mut raw = String::new();
    for (key, value) in document {
        let Some(member) = MEMBERS.iter().find(|m| m.eq_ignore_ascii_case(&key)) else {
            return Err(invalid_syntax(format!(
                "Unknown member '{}' in SearchRequest",
                crate::scim_error::shown(&key)
            )));
        };
        if *member != key {
            changes.note(Normalisation::AttributeCase);
        }
        let text = match value {
            Value::Null => continue,
            Value::String(text) => text,
            Value::Number(n) => n.to_string(),
            Value::Array(items) => {
                let mut names = String::new();
                for (index, item) in items.iter().enumerate() {
                    let Some(name) = item.as_str() else {
                        return Err(invalid_value(format!("'{member}' must be a list of attribute names")));
                    };
                    if index > 0 {
                        names.push(',');
                    }
                    names.push_str(name);
                }
                names
            }
            _ => return Err(invalid_value(format!("'{member}' has the wrong type"))),
        };
        if !raw.is_empty() {
            raw.push('&');
        }
        raw.push_str(&format!("{member}={}", utf8_percent_encode(&text, NON_ALPHANUMERIC)));
    }
    let mut first_error = None;
    for policy in policies {
        match parse_query(&raw, Method::Get, true, policy.schema()) {
            Ok(mut parsed) => {
                if !policy.restrict_query(&mut parsed, changes) {
                    return Ok(None);
                }
                parsed.cap_count();
                return Ok(Some((parsed, policy)));
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| invalid_value("No resource type to search")))
}

/// The canonical SearchRequest of a query.
pub fn search_request(query: &Query) -> Value {
    let mut request = Map::new();
    request.insert("schemas".into(), Value::from(vec![SEARCH_REQUEST_URN]));
    if let Some(filter) = &query.filter {
        request.insert("filter".into(), filter.to_canonical().into());
    }
    if let Some(start_index) = query.start_index {
        request.insert("startIndex".into(), start_index.into());
    }
    if let Some(count) = query.count {
        request.insert("count".into(), count.into());
    }
    if let Some(sort_by) = &query.sort_by {
        request.insert("sortBy".into(), sort_by.clone().into());
    }
    if let Some(sort_order) = query.sort_order {
        request.insert("sortOrder".into(), sort_order.as_str().into());
    }
    if !query.attributes.is_empty() {
        request.insert("attributes".into(), query.attributes.clone().into());
    }
    if !query.excluded_attributes.is_empty() {
        request.insert("excludedAttributes".into(), query.excluded_attributes.clone().into());
    }
    Value::Object(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::rfc_rules;
    use crate::route::ResourceType;
    use crate::scim_error::ScimType;
    use serde_json::json;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn search(resource_type: Option<ResourceType>, body: Value) -> Result<Value, ScimError> {
        let (users, groups) = (rfc_rules(ResourceType::User), rfc_rules(ResourceType::Group));
        let policies = match resource_type {
            Some(ResourceType::User) => vec![&users],
            Some(ResourceType::Group) => vec![&groups],
            None => vec![&users, &groups],
        };
        prepare_search(&policies, body.to_string().as_bytes(), &mut Changes::default())
            .map(|search| search_request(&search.expect("an rfc policy restricts nothing").0))
    }

    #[test]
    fn rfc7644_section_3_4_3_example_is_canonicalised() {
        let body = json!({
            "schemas": [SEARCH_REQUEST_URN],
            "attributes": ["displayName", "USERNAME"],
            "filter": "displayName sw \"smith\"",
            "startIndex": 1,
            "count": 10
        });
        assert_eq!(
            search(Some(ResourceType::User), body).unwrap(),
            json!({
                "schemas": [SEARCH_REQUEST_URN],
                "attributes": ["displayName", "userName"],
                "filter": "displayName sw \"smith\"",
                "startIndex": 1,
                "count": 10
            })
        );
    }

    #[test]
    fn a_root_search_accepts_attributes_of_any_resource_type() {
        let groups = json!({"schemas": [SEARCH_REQUEST_URN], "filter": "members.value eq \"u1\""});
        assert_eq!(search(None, groups).unwrap()["filter"], "members.value eq \"u1\"");
        let users = json!({"schemas": [SEARCH_REQUEST_URN], "filter": "userName eq \"a\"", "sortOrder": "DESCENDING"});
        assert_eq!(search(None, users).unwrap()["sortOrder"], "descending");
    }

    #[test]
    fn bad_search_requests_are_refused() {
        let cases = [
            (json!({"filter": "userName eq \"a\""}), ScimType::InvalidValue),
            (json!({"schemas": [SEARCH_REQUEST_URN], "filter": "nope eq \"a\""}), ScimType::InvalidFilter),
            (json!({"schemas": [SEARCH_REQUEST_URN], "query": "x"}), ScimType::InvalidSyntax),
            (json!({"schemas": [SEARCH_REQUEST_URN], "count": "ten"}), ScimType::InvalidValue),
            (json!({"schemas": [SEARCH_REQUEST_URN], "attributes": [1]}), ScimType::InvalidValue),
            (json!({"schemas": [SEARCH_REQUEST_URN], "count": {"n": 1}}), ScimType::InvalidValue),
        ];
        for (body, scim_type) in cases {
            assert_eq!(
                search(Some(ResourceType::User), body.clone()).unwrap_err().scim_type,
                Some(scim_type),
                "{body}"
            );
        }
    }
}
