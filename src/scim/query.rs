//! SCIM query parameters (RFC 7644 §3.4.2 filtering, sorting and paging; §3.9 attribute
//! selection), parsed against a resource's schemas and written back as one canonical query
//! string.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::http::Method;
use crate::scim::filter::{parse_filter, resolve_attr, Filter};
use crate::scim::schema::ResourceSchema;
use crate::scim_error::{ScimError, ScimType};

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

/// A client-supplied name as shown in an error detail: bounded.
fn shown(name: &str) -> String {
    const MAX: usize = 64;
    match name.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", name.get(..end).unwrap_or_default()),
        None => name.to_string(),
    }
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

impl Query {
    /// The canonical query string, without `?`: parameters in a fixed order (filter, startIndex,
    /// count, sortBy, sortOrder, attributes, excludedAttributes), canonical names and values,
    /// every byte outside RFC 3986's unreserved set percent-encoded (a space is `%20`). In the
    /// attribute lists each path is encoded and the separating commas stay literal.
    pub fn to_query_string(&self) -> String {
        let encode = |s: &str| utf8_percent_encode(s, COMPONENT).to_string();
        let list = |paths: &[String]| {
            Some(paths.iter().map(|p| encode(p)).collect::<Vec<_>>().join(",")).filter(|s| !s.is_empty())
        };
        let mut parts = Vec::new();
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
                parts.push(format!("{}={value}", param.name()));
            }
        }
        parts.join("&")
    }
}
