//! SCIM query parameters (RFC 7644 §3.4.2 filtering, sorting and paging; §3.9 attribute
//! selection), parsed against a resource's schemas and written back as one canonical query
//! string.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

use crate::http::Method;
use crate::scim::filter::{parse_filter, resolve_attr, Filter};
use crate::scim::schema::ResourceSchema;
use crate::scim_error::{shown, ScimError, ScimType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortOrder {
    Ascending,
    Descending,
}

impl SortOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            SortOrder::Ascending => "ascending",
            SortOrder::Descending => "descending",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Query {
    pub filter: Option<Filter>,
    /// 1-based, at least 1.
    pub start_index: Option<u64>,
    /// At least 0.
    pub count: Option<u64>,
    /// Canonical attribute paths.
    pub attributes: Vec<String>,
    /// Canonical attribute paths.
    pub excluded_attributes: Vec<String>,
    /// A canonical attribute path.
    pub sort_by: Option<String>,
    pub sort_order: Option<SortOrder>,
}

/// The parameters, in the order the canonical query string lists them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Param {
    Filter,
    StartIndex,
    Count,
    SortBy,
    SortOrder,
    Attributes,
    ExcludedAttributes,
}

impl Param {
    const ALL: [Param; 7] = [
        Param::Filter,
        Param::StartIndex,
        Param::Count,
        Param::SortBy,
        Param::SortOrder,
        Param::Attributes,
        Param::ExcludedAttributes,
    ];

    fn name(self) -> &'static str {
        match self {
            Param::Filter => "filter",
            Param::StartIndex => "startIndex",
            Param::Count => "count",
            Param::SortBy => "sortBy",
            Param::SortOrder => "sortOrder",
            Param::Attributes => "attributes",
            Param::ExcludedAttributes => "excludedAttributes",
        }
    }

    /// RFC 7644 names parameters case-sensitively; clients vary, so any case is accepted.
    fn parse(name: &str) -> Option<Param> {
        Param::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// RFC 7644 §3.9: `attributes` and `excludedAttributes` apply to every request that returns
    /// a resource; filtering, sorting and paging only to a query of a collection (§3.4.2).
    fn applies_to_single_resource(self) -> bool {
        matches!(self, Param::Attributes | Param::ExcludedAttributes)
    }
}

/// RFC 3986 §2.3 unreserved characters stay; everything else is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, detail)
}

/// Form-decodes one name or value: `+` is a space, then percent escapes, which must be well
/// formed and decode to UTF-8.
fn decode(raw: &str, what: &str) -> Result<String, ScimError> {
    let bytes = raw.as_bytes();
    let well_formed = bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'%')
        .all(|(i, _)| bytes.get(i + 1..i + 3).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)));
    if !well_formed {
        return Err(invalid(format!("Invalid query string: malformed percent escape in {what}")));
    }
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| invalid(format!("Invalid query string: {what} is not UTF-8")))
}

/// An RFC 7644 §3.4.2.4 integer: `-?[0-9]+`, with negative numbers kept as `None`.
fn integer(value: &str, param: Param) -> Result<Option<u64>, ScimError> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, value),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!("Query parameter '{}' must be an integer", param.name())));
    }
    if negative {
        return Ok(None);
    }
    digits.parse().map(Some).map_err(|_| invalid(format!("Query parameter '{}' is out of range", param.name())))
}

/// One attribute path, resolved as filters resolve them, in canonical form.
fn attribute_path(path: &str, param: Param, schema: &ResourceSchema) -> Result<String, ScimError> {
    if path.is_empty() {
        return Err(invalid(format!("Query parameter '{}' has an empty attribute name", param.name())));
    }
    resolve_attr(schema, path).map(|a| a.canonical()).ok_or_else(|| {
        invalid(format!("Query parameter '{}' names an unknown attribute '{}'", param.name(), shown(path)))
    })
}

/// RFC 7644 §3.9: a comma-separated list of attribute paths (spaces around commas tolerated),
/// without duplicates.
fn attribute_list(value: &str, param: Param, schema: &ResourceSchema) -> Result<Vec<String>, ScimError> {
    let mut paths: Vec<String> = Vec::new();
    for path in value.split(',') {
        let path = attribute_path(path.trim(), param, schema)?;
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    Ok(paths)
}

/// Parses a query string (without `?`). `collection` is true for GET /Users and GET /Groups
/// (where filter, paging and sorting apply); false for a single resource or for POST/PUT/PATCH
/// (only attributes/excludedAttributes apply, RFC 7644 §3.9); DELETE takes no parameters.
///
/// Errors are 400 `invalidValue`, except a bad `filter`, which is 400 `invalidFilter`; details
/// name parameters and attributes, never values.
pub fn parse_query(raw: &str, method: Method, collection: bool, schema: &ResourceSchema) -> Result<Query, ScimError> {
    let mut query = Query::default();
    let mut seen: Vec<Param> = Vec::new();
    let collection = collection && method == Method::Get;
    for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(raw_name, "a parameter name")?;
        let param =
            Param::parse(&name).ok_or_else(|| invalid(format!("Unknown query parameter '{}'", shown(&name))))?;
        if method == Method::Delete {
            return Err(invalid(format!("DELETE takes no query parameters ('{}' given)", param.name())));
        }
        if !collection && !param.applies_to_single_resource() {
            return Err(invalid(format!(
                "Query parameter '{}' applies only to GET on /{} (a query of the collection)",
                param.name(),
                schema.resource_type.endpoint()
            )));
        }
        if seen.contains(&param) {
            return Err(invalid(format!("Query parameter '{}' is given more than once", param.name())));
        }
        seen.push(param);
        let value = decode(raw_value, &format!("the value of '{}'", param.name()))?;
        if value.is_empty() {
            return Err(invalid(format!("Query parameter '{}' has no value", param.name())));
        }
        match param {
            Param::Filter => query.filter = Some(parse_filter(&value, schema)?),
            // RFC 7644 §3.4.2.4: a startIndex below 1 is read as 1, a negative count as 0.
            Param::StartIndex => query.start_index = Some(integer(&value, param)?.unwrap_or(1).max(1)),
            Param::Count => query.count = Some(integer(&value, param)?.unwrap_or(0)),
            Param::SortBy => query.sort_by = Some(attribute_path(value.trim(), param, schema)?),
            // RFC 7644 §3.4.2.3: "ascending" or "descending" (any case accepted).
            Param::SortOrder => {
                query.sort_order = Some(match value.to_ascii_lowercase().as_str() {
                    "ascending" => SortOrder::Ascending,
                    "descending" => SortOrder::Descending,
                    _ => return Err(invalid("Query parameter 'sortOrder' must be 'ascending' or 'descending'")),
                })
            }
            Param::Attributes => query.attributes = attribute_list(&value, param, schema)?,
            Param::ExcludedAttributes => query.excluded_attributes = attribute_list(&value, param, schema)?,
        }
    }
    Ok(query)
}

/// The most resources one page holds at the edge: RFC 7643 §5 `filter.maxResults` in
/// `/ServiceProviderConfig`, and the cap on `count` (Omni's default page size).
pub const MAX_RESULTS: u64 = 100;

impl Query {
    /// Reduces a `count` above [`MAX_RESULTS`] to it: the edge never asks the upstream for a page
    /// larger than it announces (RFC 7644 §3.4.2.4: the service provider MAY return fewer results
    /// than `count` asks for).
    pub fn cap_count(&mut self) {
        if let Some(count) = self.count.as_mut() {
            *count = (*count).min(MAX_RESULTS);
        }
    }

    /// The canonical query string, without `?`: parameters in a fixed order (filter, startIndex,
    /// count, sortBy, sortOrder, attributes, excludedAttributes), canonical names and values,
    /// every byte outside RFC 3986's unreserved set percent-encoded (a space is `%20`). In the
    /// attribute lists each path is encoded and the separating commas stay literal.
    pub fn to_query_string(&self) -> String {
        let encode = |s: &str| utf8_percent_encode(s, COMPONENT).to_string();
        // Joined by hand: `[String]::join` would be one more copy of the generic join in the module.
        let list = |paths: &[String]| {
            let mut joined = String::new();
            for (index, path) in paths.iter().enumerate() {
                if index > 0 {
                    joined.push(',');
                }
                joined.push_str(&encode(path));
            }
            Some(joined).filter(|s| !s.is_empty())
        };
        let mut query = String::new();
        for param in Param::ALL {
            let value = match param {
                Param::Filter => self.filter.as_ref().map(|f| encode(&f.to_canonical())),
                Param::StartIndex => self.start_index.map(|n| n.to_string()),
                Param::Count => self.count.map(|n| n.to_string()),
                Param::SortBy => self.sort_by.as_deref().map(encode),
                Param::SortOrder => self.sort_order.map(|o| o.as_str().to_string()),
                Param::Attributes => list(&self.attributes),
                Param::ExcludedAttributes => list(&self.excluded_attributes),
            };
            if let Some(value) = value {
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(param.name());
                query.push('=');
                query.push_str(&value);
            }
        }
        query
    }
}

/// Attribute selection (RFC 7644 §3.4.2.5) the edge applies to the response itself, because the
/// upstream's contract takes no such parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Projection {
    attributes: Vec<String>,
    excluded: Vec<String>,
}

impl Projection {
    pub fn new(attributes: Vec<String>, excluded: Vec<String>) -> Projection {
        Projection { attributes, excluded }
    }

    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// Applies the selection to a resource, or to each resource of a ListResponse. `id`,
    /// `schemas` and `meta` are always returned; selection is by top-level attribute, and an
    /// excluded sub-attribute is removed from its attribute.
    pub fn apply(&self, body: &mut Value) {
        match body.get_mut("Resources") {
            Some(Value::Array(resources)) => resources.iter_mut().for_each(|r| self.apply_one(r)),
            _ => self.apply_one(body),
        }
    }

    fn apply_one(&self, resource: &mut Value) {
        let Value::Object(map) = resource else {
            return;
        };
        let top = |path: &str| -> String {
            match path.rsplit_once(':') {
                Some((urn, _)) => urn.to_ascii_lowercase(),
                None => path.split('.').next().unwrap_or_default().to_ascii_lowercase(),
            }
        };
        if !self.attributes.is_empty() {
            let mut wanted = Vec::with_capacity(self.attributes.len());
            for attribute in &self.attributes {
                wanted.push(top(attribute));
            }
            retain(map, &mut |key, _| {
                matches!(key.as_str(), "id" | "schemas" | "meta") || wanted.contains(&key.to_ascii_lowercase())
            });
        }
        for path in &self.excluded {
            match path.split_once('.').filter(|_| !path.contains(':')) {
                Some((name, sub)) => {
                    if let Some(Value::Object(inner)) = map.get_mut(name) {
                        inner.remove(sub);
                    }
                }
                None => {
                    let name = top(path);
                    retain(map, &mut |key, _| key.to_ascii_lowercase() != name || key == "id");
                }
            }
        }
    }
}

/// `Map::retain` behind one instantiation: each closure passed to `retain` directly would get its
/// own copy of the B-tree's removal code.
pub(crate) fn retain(map: &mut Map<String, Value>, keep: &mut dyn FnMut(&String, &mut Value) -> bool) {
    map.retain(|name, value| keep(name, value));
}

/// `Vec::retain` on strings behind one instantiation, for the same reason as [`retain`].
pub(crate) fn retain_strings(list: &mut Vec<String>, keep: &mut dyn FnMut(&String) -> bool) {
    list.retain(|item| keep(item));
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use crate::route::ResourceType;
    use crate::scim::schema::ENTERPRISE_USER_URN;

    fn user() -> &'static ResourceSchema {
        ResourceSchema::for_type(ResourceType::User)
    }

    /// A query on GET /Users, checked to round-trip through its canonical string.
    fn list(raw: &str) -> Query {
        let query = parse_query(raw, Method::Get, true, user()).unwrap_or_else(|e| panic!("{raw}: {}", e.detail));
        let canonical = query.to_query_string();
        assert_eq!(parse_query(&canonical, Method::Get, true, user()).unwrap(), query, "{raw} -> {canonical}");
        query
    }

    fn canonical(raw: &str) -> String {
        list(raw).to_query_string()
    }

    fn error(raw: &str, method: Method, collection: bool) -> ScimError {
        let error = parse_query(raw, method, collection, user()).expect_err(raw);
        assert_eq!(error.status, 400, "{raw}");
        error
    }

    fn invalid_value(raw: &str) -> String {
        let error = error(raw, Method::Get, true);
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{raw}: {}", error.detail);
        error.detail
    }

    #[test]
    fn empty_query_is_the_default_for_every_method() {
        for method in [Method::Get, Method::Post, Method::Put, Method::Patch, Method::Delete] {
            for collection in [true, false] {
                assert_eq!(parse_query("", method, collection, user()).unwrap(), Query::default());
            }
        }
        assert_eq!(Query::default().to_query_string(), "");
        assert_eq!(list("&&"), Query::default());
    }

    #[test]
    fn entra_queries() {
        let query = list("filter=userName+eq+%22Test_User_00aa00aa%40testuser.com%22");
        assert_eq!(query.filter.unwrap().to_canonical(), r#"userName eq "Test_User_00aa00aa@testuser.com""#);
        assert_eq!(
            canonical("filter=userName%20eq%20%22ada@example.com%22"),
            "filter=userName%20eq%20%22ada%40example.com%22"
        );
        let groups = ResourceSchema::for_type(ResourceType::Group);
        let query =
            parse_query("excludedAttributes=members&filter=displayName+eq+%22Group+1%22", Method::Get, true, groups)
                .unwrap();
        assert_eq!(query.excluded_attributes, vec!["members"]);
        assert_eq!(query.to_query_string(), "filter=displayName%20eq%20%22Group%201%22&excludedAttributes=members");
        let query = parse_query("excludedAttributes=members", Method::Get, false, groups).unwrap();
        assert_eq!(query.to_query_string(), "excludedAttributes=members");
    }

    #[test]
    fn every_parameter_parses_to_canonical_form() {
        let query = list(
            "filter=userName+eq+%22bjensen%22&startIndex=1&count=10&sortBy=name.FAMILYNAME&sortOrder=Descending\
             &attributes=userName,%20emails%20,%20manager&excludedAttributes=groups",
        );
        assert_eq!(
            query,
            Query {
                filter: Some(parse_filter(r#"userName eq "bjensen""#, user()).unwrap()),
                start_index: Some(1),
                count: Some(10),
                attributes: vec!["userName".into(), "emails".into(), format!("{ENTERPRISE_USER_URN}:manager")],
                excluded_attributes: vec!["groups".into()],
                sort_by: Some("name.familyName".into()),
                sort_order: Some(SortOrder::Descending),
            }
        );
        assert_eq!(
            query.to_query_string(),
            "filter=userName%20eq%20%22bjensen%22&startIndex=1&count=10&sortBy=name.familyName&sortOrder=descending\
             &attributes=userName,emails,urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Aextension%3Aenterprise%3A2.0%3AUser%3Amanager\
             &excludedAttributes=groups"
        );
    }

    #[test]
    fn parameters_are_written_in_a_fixed_order_with_canonical_names() {
        assert_eq!(
            canonical(
                "EXCLUDEDATTRIBUTES=groups&SortOrder=ASCENDING&sortby=userName&COUNT=5&startindex=2&Filter=title+pr"
            ),
            "filter=title%20pr&startIndex=2&count=5&sortBy=userName&sortOrder=ascending&excludedAttributes=groups"
        );
    }

    #[test]
    fn plus_and_percent_20_are_the_same_space() {
        let plus = canonical("filter=userName+eq+%22a+b%22+and+title+pr&attributes=userName+,+title");
        let percent =
            canonical("filter=userName%20eq%20%22a%20b%22%20and%20title%20pr&attributes=userName%20,%20title");
        let mixed = canonical("filter=userName+eq%20%22a%20b%22++and%20+title%20pr&attributes=userName,title");
        assert_eq!(plus, percent);
        assert_eq!(plus, mixed);
        assert_eq!(plus, "filter=userName%20eq%20%22a%20b%22%20and%20title%20pr&attributes=userName,title");
        // An encoded plus stays a plus.
        let query = list("filter=userName+eq+%22a%2Bb%22");
        assert_eq!(query.filter.unwrap().to_canonical(), r#"userName eq "a+b""#);
    }

    #[test]
    fn values_are_percent_encoded_except_unreserved_characters() {
        let query =
            list("filter=userName+eq+%22%C3%A9%7E-._%2F%3F%26%3D%23%2C%22&attributes=name.givenName,emails.value");
        assert_eq!(
            query.to_query_string(),
            "filter=userName%20eq%20%22%C3%A9~-._%2F%3F%26%3D%23%2C%22&attributes=name.givenName,emails.value"
        );
    }

    #[test]
    fn start_index_and_count_are_normalised() {
        for (raw, expected) in [("1", 1), ("0", 1), ("-5", 1), ("-0", 1), ("7", 7), ("-99999999999999999999999", 1)] {
            assert_eq!(list(&format!("startIndex={raw}")).start_index, Some(expected), "{raw}");
        }
        for (raw, expected) in [("0", 0), ("-1", 0), ("25", 25), ("00012", 12), ("-99999999999999999999999", 0)] {
            assert_eq!(list(&format!("count={raw}")).count, Some(expected), "{raw}");
        }
        assert_eq!(canonical("startIndex=-3&count=-3"), "startIndex=1&count=0");
        assert_eq!(list("count=18446744073709551615").count, Some(u64::MAX));
        for raw in ["1.5", "abc", "1e3", "+1", "%2B1", "", "-", "0x10", " 1", "1 ", "99999999999999999999999"] {
            for name in ["startIndex", "count"] {
                let detail = invalid_value(&format!("{name}={raw}"));
                assert!(detail.contains(&format!("'{name}'")), "{raw}: {detail}");
            }
        }
    }

    #[test]
    fn attribute_lists_resolve_with_the_extension_fallback() {
        let query = list("attributes=USERNAME,%20name.givenName%20,emails.value,employeeNumber,userName");
        assert_eq!(
            query.attributes,
            vec![
                "userName".to_string(),
                "name.givenName".into(),
                "emails.value".into(),
                format!("{ENTERPRISE_USER_URN}:employeeNumber")
            ]
        );
        let detail = invalid_value("attributes=userName,s3cretAttr");
        assert!(detail.contains("'s3cretAttr'") && detail.contains("'attributes'"), "{detail}");
        for raw in ["attributes=userName,,title", "attributes=userName,", "excludedAttributes=%20", "sortBy=nope"] {
            invalid_value(raw);
        }
        assert_eq!(
            list("sortBy=manager.displayName").sort_by,
            Some(format!("{ENTERPRISE_USER_URN}:manager.displayName"))
        );
    }

    #[test]
    fn parameters_are_checked_against_method_and_endpoint() {
        // RFC 7644 §3.9: attribute selection applies wherever a resource is returned.
        for method in [Method::Get, Method::Post, Method::Put, Method::Patch] {
            let query = parse_query("attributes=userName&excludedAttributes=emails", method, false, user()).unwrap();
            assert_eq!(query.to_query_string(), "attributes=userName&excludedAttributes=emails");
        }
        assert!(parse_query("attributes=userName", Method::Post, true, user()).is_ok());
        for raw in ["filter=title+pr", "startIndex=1", "count=1", "sortBy=userName", "sortOrder=ascending"] {
            for (method, collection) in
                [(Method::Get, false), (Method::Post, true), (Method::Put, false), (Method::Patch, false)]
            {
                let error = error(raw, method, collection);
                assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{raw}");
                assert!(error.detail.contains("/Users"), "{}", error.detail);
            }
        }
        for raw in ["attributes=userName", "filter=title+pr"] {
            let detail = error(raw, Method::Delete, false).detail;
            assert!(detail.contains("DELETE"), "{detail}");
        }
    }

    #[test]
    fn bad_parameters_are_invalid_value_and_named() {
        let detail = invalid_value("filter=title+pr&fliter=x");
        assert!(detail.contains("'fliter'"), "{detail}");
        let detail = invalid_value("filter=title+pr&Filter=title+pr");
        assert!(detail.contains("'filter'") && detail.contains("more than once"), "{detail}");
        invalid_value("count=1&count=1");
        assert!(invalid_value("sortOrder=up").contains("'sortOrder'"));
        assert!(invalid_value("count=").contains("'count'"));
        assert!(invalid_value("filter").contains("'filter'"));
        assert!(invalid_value(&format!("{}=1", "x".repeat(5000))).len() < 200);
        for raw in ["filter=%zz", "filter=%2", "filter=title%", "filter=%ff%fe", "fil%zzter=x", "%C3%28=1", "count=%2"]
        {
            let detail = invalid_value(raw);
            assert!(detail.contains("percent escape") || detail.contains("UTF-8"), "{raw}: {detail}");
        }
    }

    #[test]
    fn filter_errors_are_invalid_filter() {
        for raw in [
            "filter=nope+eq+%22s3cret%22",
            "filter=userName+eq",
            "filter=%28%28title+pr",
            "filter=userName%20eq%20%22%5Cud800%22",
        ] {
            let error = error(raw, Method::Get, true);
            assert_eq!(error.scim_type, Some(ScimType::InvalidFilter), "{raw}");
            assert!(!error.detail.contains("s3cret"));
        }
        let long = format!("filter=userName+eq+%22{}%22", "a".repeat(5000));
        assert!(error(&long, Method::Get, true).detail.contains("MAX_FILTER_LEN"));
        let deep = format!("filter={}title+pr{}", "%28".repeat(1000), "%29".repeat(1000));
        assert!(error(&deep, Method::Get, true).detail.contains("MAX_FILTER_DEPTH"));
    }
}
