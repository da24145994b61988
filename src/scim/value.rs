//! Attribute values against their RFC 7643 definition: JSON types, sub-attributes, multi-valued
//! rules, with the normalisations that make a value canonical (string booleans, attribute case,
//! nulls). Shared by resource bodies and PATCH values.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::normalisation::{Changes, Normalisation};
use super::schema::{AttrType, Attribute, Mutability, ENTERPRISE_USER};
use crate::scim_error::{ScimError, ScimType};

/// Deepest JSON nesting accepted. SCIM documents need about six levels (a PatchOp adding a member:
/// document, Operations, operation, value, member, sub-attribute); hostile ones get refused early.
pub const MAX_DEPTH: usize = 32;

/// Most values accepted in one multi-valued attribute (or one PATCH value list).
pub const MAX_VALUES: usize = 10_000;

/// An attribute path as an error detail shows it: a value filter's contents (the client's values)
/// are left out, `emails[…].primary`, and the rest is bounded by [`crate::scim_error::shown`].
pub fn shown(path: &str) -> String {
    match (path.find('['), path.rfind(']')) {
        (Some(open), Some(close)) if open < close => crate::scim_error::shown(&format!(
            "{}[…]{}",
            path.get(..open).unwrap_or_default(),
            path.get(close + 1..).unwrap_or_default()
        )),
        _ => crate::scim_error::shown(path),
    }
}

/// A JSON object from its members, moved in (each leaves a `null` behind): `object(&mut [...])`.
/// Unlike `json!`, which serializes every member anew through serde (a deep copy of each `Value`,
/// and code for each member type), this only moves. Members are inserted one by one: collecting
/// into a `Map` would sort them first, with a stable sort instantiated anew for every iterator
/// type (wasm size: docs/performance.md).
pub fn object(members: &mut [(&str, Value)]) -> Value {
    let mut map = Map::new();
    for (name, value) in members {
        map.insert((*name).to_string(), std::mem::take(value));
    }
    Value::Object(map)
}

pub fn invalid_value(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, detail)
}

pub fn invalid_syntax(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidSyntax, detail)
}

/// Parses a request body that must be one JSON object, within [`MAX_DEPTH`].
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ScimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid_syntax("This request needs a JSON body"));
    }
    // serde_json bounds its own recursion (128 levels), so parsing hostile nesting cannot exhaust
    // the stack; its messages give a position, never the text.
    check_number_precision(body)?;
    let value = parse_json(body, true).map_err(|e| {
        let what = if e.to_string().starts_with(DUPLICATE_KEY) { "has a duplicate key" } else { "is not valid JSON" };
        invalid_syntax(format!("The request body {what} (line {}, column {})", e.line(), e.column()))
    })?;
    if depth(&value) > MAX_DEPTH {
        return Err(invalid_syntax(format!("The request body is nested deeper than {MAX_DEPTH} levels")));
    }
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(invalid_syntax("The request body is not a JSON object")),
    }
}

/// Takes the `schemas` of an API message (PatchOp, SearchRequest) out of its document: it must be
/// exactly `[urn]` (RFC 7644 §3.5.2, §3.4.3).
pub fn take_message_schema(document: &mut Map<String, Value>, urn: &str) -> Result<(), ScimError> {
    let key = document.keys().find(|k| k.eq_ignore_ascii_case("schemas")).cloned();
    let Some(value) = key.and_then(|key| document.remove(key.as_str())) else {
        return Err(invalid_value(format!("'schemas' is required; it must be [\"{urn}\"]")));
    };
    match value.as_array().map(Vec::as_slice) {
        Some([declared]) if declared.as_str().is_some_and(|declared| declared.eq_ignore_ascii_case(urn)) => Ok(()),
        _ => Err(invalid_value(format!("'schemas' must be [\"{urn}\"]"))),
    }
}

/// Numbers the gateway forwards exactly as written: integers of at most 18 digits, and decimals
/// of at most 15 significant digits scaled by at most 10^±22 — the range where parsing into an
/// IEEE double and printing it back is exact. Anything else would reach the upstream changed (a
/// 100-digit integer as 1e100, 1.5e-400 as 0), so it is refused; RFC 8259 §6 lets implementations
/// limit the range and precision of numbers.
const MAX_INTEGER_DIGITS: usize = 18;
const MAX_DECIMAL_DIGITS: usize = 15;
const MAX_DECIMAL_SCALE: i64 = 22;

/// A lexical pass over the numbers outside strings (see [`MAX_INTEGER_DIGITS`]).
fn check_number_precision(body: &[u8]) -> Result<(), ScimError> {
    let mut index = 0;
    let mut in_string = false;
    while let Some(&b) = body.get(index) {
        if in_string {
            match b {
                b'\\' => index += 1,
                b'"' => in_string = false,
                _ => {}
            }
            index += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
        } else if b.is_ascii_digit() {
            let start = index;
            while body.get(index).is_some_and(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+')) {
                index += 1;
            }
            if !number_is_exact(body.get(start..index).unwrap_or_default()) {
                return Err(invalid_value(format!(
                    "A number in the body has more digits or a larger exponent than the gateway forwards exactly \
                     ({MAX_INTEGER_DIGITS}-digit integers, {MAX_DECIMAL_DIGITS}-digit decimals up to 10^±{MAX_DECIMAL_SCALE}); \
                     send it as a string"
                )));
            }
            continue;
        }
        index += 1;
    }
    Ok(())
}

/// Whether a JSON number (without its sign) survives a round trip through `f64`/`i64` unchanged.
fn number_is_exact(number: &[u8]) -> bool {
    let (mantissa, exponent) = match number.iter().position(|c| matches!(c, b'e' | b'E')) {
        Some(at) => (number.get(..at).unwrap_or_default(), number.get(at + 1..)),
        None => (number, None),
    };
    let (whole, fraction) = match mantissa.iter().position(|c| *c == b'.') {
        Some(at) => (mantissa.get(..at).unwrap_or_default(), mantissa.get(at + 1..).unwrap_or_default()),
        None => (mantissa, &b""[..]),
    };
    let significant = whole.iter().chain(fraction).skip_while(|c| **c == b'0').count();
    if exponent.is_none() && fraction.is_empty() {
        return significant <= MAX_INTEGER_DIGITS;
    }
    let exponent: i64 = exponent
        .and_then(|e| std::str::from_utf8(e).ok())
        .map_or(Some(0), |e| e.trim_start_matches('+').parse().ok())
        .unwrap_or(i64::MAX);
    let scale = exponent.saturating_sub(i64::try_from(fraction.len()).unwrap_or(i64::MAX));
    significant <= MAX_DECIMAL_DIGITS && scale.abs() <= MAX_DECIMAL_SCALE
}

const DUPLICATE_KEY: &str = "duplicate key";

/// Parses one JSON document into a [`Value`]. `strict` refuses objects with duplicate keys: RFC
/// 8259 §4 leaves the meaning of a repeated name to each parser, and two `userName`s in one body
/// would let the gateway and the upstream read different users. Otherwise the last one wins, as
/// with `serde_json::from_slice::<Value>`; one visitor serves both, so the module carries one copy
/// of the JSON-to-`Value` code.
pub fn parse_json(bytes: &[u8], strict: bool) -> serde_json::Result<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = JsonValue { strict }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

#[derive(Clone, Copy)]
struct JsonValue {
    strict: bool,
}

impl<'de> DeserializeSeed<'de> for JsonValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonValue {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(value).map(Value::Number).ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if object.insert(key, value).is_some() && self.strict {
                return Err(de::Error::custom(DUPLICATE_KEY));
            }
        }
        Ok(Value::Object(object))
    }
}

/// Nesting depth, without recursion.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, level)) = stack.pop() {
        deepest = deepest.max(level);
        match value {
            Value::Array(items) => {
                for item in items {
                    stack.push((item, level + 1));
                }
            }
            Value::Object(map) => {
                for item in map.values() {
                    stack.push((item, level + 1));
                }
            }
            _ => {}
        }
    }
    deepest
}

/// Checks and normalises the value of `attribute` (named `path` in errors). `None` when the value
/// is null and so dropped.
pub fn check_attribute(
    attribute: &'static Attribute,
    value: Value,
    path: &str,
    changes: &mut Changes,
) -> Result<Option<Value>, ScimError> {
    let value = if is_manager(attribute) { manager_shape(value, path, changes)? } else { value };
    if value.is_null() {
        changes.note(Normalisation::NullDropped);
        return Ok(None);
    }
    if !attribute.multi_valued {
        return check_single(attribute, value, path, changes).map(Some);
    }
    let Value::Array(items) = value else {
        return Err(invalid_value(format!("Attribute '{path}' is multi-valued: send a JSON array")));
    };
    check_values(attribute, items, path, changes).map(|items| Some(Value::Array(items)))
}

/// Whether `attribute` is the Enterprise User's `manager` (RFC 7643 §4.3).
fn is_manager(attribute: &'static Attribute) -> bool {
    ENTERPRISE_USER.attribute("manager").is_some_and(|manager| std::ptr::eq(manager, attribute))
}

/// The Enterprise User's `manager` in RFC 7643 §4.3's shape, a complex `{"value": "<id>"}`, from
/// the shapes Entra sends: a bare id string (in resources and PATCH values, both forms), or the
/// one-item list of its documentation, `[{"$ref": null, "value": "<id>"}]` (or `["<id>"]`).
/// `manager` is single-valued: a list of any other length is refused.
fn manager_shape(value: Value, path: &str, changes: &mut Changes) -> Result<Value, ScimError> {
    let value = match value {
        Value::Array(items) => {
            let mut items = items.into_iter();
            match (items.next(), items.next()) {
                (Some(item), None) if !item.is_array() => {
                    changes.note(Normalisation::ManagerShape);
                    item
                }
                _ => return Err(invalid_value(format!("Attribute '{path}' is single-valued: send one manager"))),
            }
        }
        other => other,
    };
    match value {
        Value::String(id) => {
            changes.note(Normalisation::ManagerShape);
            Ok(object(&mut [("value", Value::String(id))]))
        }
        other => Ok(other),
    }
}

/// The items of a multi-valued attribute: each checked, nulls dropped, at most one `primary`.
pub fn check_values(
    attribute: &'static Attribute,
    items: Vec<Value>,
    path: &str,
    changes: &mut Changes,
) -> Result<Vec<Value>, ScimError> {
    if items.len() > MAX_VALUES {
        return Err(invalid_value(format!("Attribute '{path}' has more than {MAX_VALUES} values")));
    }
    let mut checked = Vec::with_capacity(items.len());
    for item in items {
        if item.is_null() {
            changes.note(Normalisation::NullDropped);
            continue;
        }
        checked.push(check_single(attribute, item, path, changes)?);
    }
    // RFC 7643 §2.4: the primary attribute value "true" MUST appear no more than once.
    let primaries = checked.iter().filter(|v| v.get("primary") == Some(&Value::Bool(true))).count();
    if primaries > 1 {
        return Err(invalid_value(format!("Attribute '{path}' has more than one primary value")));
    }
    Ok(checked)
}

/// One value of `attribute` (one item, for a multi-valued one).
pub fn check_single(
    attribute: &'static Attribute,
    value: Value,
    path: &str,
    changes: &mut Changes,
) -> Result<Value, ScimError> {
    match attribute.ty {
        AttrType::Complex => {
            let Value::Object(map) = value else {
                return Err(invalid_value(format!("Attribute '{path}' is complex: send a JSON object")));
            };
            check_sub_attributes(attribute, map, path, changes).map(Value::Object)
        }
        AttrType::Any => match &value {
            Value::String(text) if has_control_character(text) => Err(control_character(path)),
            _ => Ok(value),
        },
        AttrType::Boolean => match value {
            Value::Bool(_) => Ok(value),
            Value::String(text) if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") => {
                changes.note(Normalisation::StringBoolean);
                Ok(Value::Bool(text.eq_ignore_ascii_case("true")))
            }
            _ => Err(invalid_value(format!("Attribute '{path}' must be a boolean"))),
        },
        AttrType::Integer if value.is_i64() || value.is_u64() => Ok(value),
        AttrType::Integer => Err(invalid_value(format!("Attribute '{path}' must be an integer"))),
        AttrType::Decimal if value.is_number() => Ok(value),
        AttrType::Decimal => Err(invalid_value(format!("Attribute '{path}' must be a number"))),
        AttrType::String | AttrType::Reference | AttrType::Binary | AttrType::DateTime => match value {
            Value::String(text) if has_control_character(&text) => Err(control_character(path)),
            Value::String(_) => Ok(value),
            _ => Err(invalid_value(format!("Attribute '{path}' must be a string"))),
        },
    }
}

/// NUL and the other C0 and C1 control characters, but for tab, line feed and carriage return
/// (a postal address's `formatted` value spans lines, RFC 7643 §4.1.2): nothing a directory
/// attribute holds, and what log injection and C-string truncation are made of upstream.
fn has_control_character(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

fn control_character(path: &str) -> ScimError {
    invalid_value(format!("Attribute '{path}' holds a control character (U+0000 to U+001F or U+007F to U+009F)"))
}

/// The sub-attributes of a complex value: known, canonical case, nulls and read-only ones dropped.
fn check_sub_attributes(
    attribute: &'static Attribute,
    map: Map<String, Value>,
    path: &str,
    changes: &mut Changes,
) -> Result<Map<String, Value>, ScimError> {
    let mut checked = Map::new();
    for (name, value) in map {
        if value.is_null() {
            changes.note(Normalisation::NullDropped);
            continue;
        }
        let Some(sub) = attribute.sub_attribute(&name) else {
            return Err(invalid_value(format!("Unknown attribute '{}'", shown(&format!("{path}.{name}")))));
        };
        if sub.name != name {
            changes.note(Normalisation::AttributeCase);
        }
        if sub.mutability == Mutability::ReadOnly {
            changes.note(Normalisation::ReadOnlyDropped);
            continue;
        }
        let sub_path = format!("{path}.{}", sub.name);
        let value = check_single(sub, value, &sub_path, changes)?;
        if checked.insert(sub.name.to_string(), value).is_some() {
            return Err(invalid_syntax(format!("Attribute '{sub_path}' appears more than once")));
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::ResourceType;
    use crate::scim::schema::ResourceSchema;
    use serde_json::json;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn user_attr(name: &str) -> &'static Attribute {
        ResourceSchema::for_type(ResourceType::User).resolve(name).unwrap().target()
    }

    fn check(name: &str, value: Value) -> (Result<Option<Value>, ScimError>, Changes) {
        let mut changes = Changes::default();
        (check_attribute(user_attr(name), value, name, &mut changes), changes)
    }

    #[test]
    fn string_booleans_become_booleans() {
        for (sent, meant) in [("True", true), ("FALSE", false), ("false", false)] {
            let (result, changes) = check("active", json!(sent));
            assert_eq!(result.unwrap(), Some(json!(meant)));
            assert_eq!(changes.kinds(), [Normalisation::StringBoolean]);
        }
        let (result, _) = check("active", json!("yes"));
        assert_eq!(result.unwrap_err().detail, "Attribute 'active' must be a boolean");
    }

    #[test]
    fn complex_values_are_canonical_and_read_only_sub_attributes_dropped() {
        let (result, changes) = check("name", json!({"GivenName": "Ada", "familyName": null}));
        assert_eq!(result.unwrap(), Some(json!({"givenName": "Ada"})));
        assert_eq!(changes.kinds(), [Normalisation::AttributeCase, Normalisation::NullDropped]);

        let manager = ResourceSchema::for_type(ResourceType::User)
            .resolve("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
            .unwrap()
            .target();
        let mut changes = Changes::default();
        let value = check_single(manager, json!({"value": "m1", "displayName": "Boss"}), "manager", &mut changes);
        assert_eq!(value.unwrap(), json!({"value": "m1"}));
        assert_eq!(changes.kinds(), [Normalisation::ReadOnlyDropped]);
    }

    #[test]
    fn entra_manager_shapes_become_the_rfc_complex_value() {
        let manager = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
        for sent in [json!("m1"), json!(["m1"]), json!([{"$ref": null, "value": "m1"}]), json!([{"value": "m1"}])] {
            let (result, changes) = check(manager, sent.clone());
            assert_eq!(result.unwrap(), Some(json!({"value": "m1"})), "{sent}");
            assert!(changes.kinds().contains(&Normalisation::ManagerShape), "{sent}: {changes:?}");
        }
        let (result, changes) = check(manager, json!({"value": "m1"}));
        assert_eq!(
            (result.unwrap(), changes.kinds()),
            (Some(json!({"value": "m1"})), &[][..]),
            "the RFC shape is kept"
        );
        for sent in [json!([]), json!(["m1", "m2"]), json!([["m1"]])] {
            let (result, _) = check(manager, sent.clone());
            assert_eq!(result.unwrap_err().detail, format!("Attribute '{manager}' is single-valued: send one manager"));
        }
        let (result, _) = check(manager, json!(7));
        assert_eq!(result.unwrap_err().detail, format!("Attribute '{manager}' is complex: send a JSON object"));
        // Only `manager`: another complex attribute sent as a string is still refused.
        let (result, _) = check("name", json!("Ada"));
        assert_eq!(result.unwrap_err().detail, "Attribute 'name' is complex: send a JSON object");
    }

    #[test]
    fn multi_valued_rules() {
        let (result, _) = check("emails", json!({"value": "a@example.com"}));
        assert_eq!(result.unwrap_err().scim_type, Some(ScimType::InvalidValue));
        let (result, _) = check("emails", json!([{"value": "a", "primary": true}, {"value": "b", "primary": "True"}]));
        assert_eq!(result.unwrap_err().detail, "Attribute 'emails' has more than one primary value");
        let (result, _) = check("emails", json!([{"value": "a", "kind": "work"}]));
        assert_eq!(result.unwrap_err().detail, "Unknown attribute 'emails.kind'");
        let (result, _) = check("emails", json!([{"value": 7}]));
        assert_eq!(result.unwrap_err().detail, "Attribute 'emails.value' must be a string");
        let (result, changes) = check("roles", json!([]));
        assert_eq!((result.unwrap(), changes.is_empty()), (Some(json!([])), true));
        let many: Vec<Value> = (0..=MAX_VALUES).map(|i| json!({"value": i.to_string()})).collect();
        assert!(check("emails", Value::Array(many)).0.is_err());
    }

    #[test]
    fn values_never_appear_in_errors() {
        let (result, _) = check("emails", json!([{"value": {"secret": "hunter2"}}]));
        assert!(!result.unwrap_err().detail.contains("hunter2"));
    }

    #[test]
    fn shown_paths_leave_filter_values_out() {
        assert_eq!(shown(r#"emails[value eq "ada@example.com"].primary"#), "emails[…].primary");
        assert_eq!(shown(r#"members[value eq "a]b"]"#), "members[…]");
        assert_eq!(shown("name.givenName"), "name.givenName");
        assert_eq!(shown(&"x".repeat(300)).chars().count(), 101);
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for body in [
            &br#"{"userName":"a","userName":"admin"}"#[..],
            br#"{"name":{"givenName":"a","givenName":"b"}}"#,
            br#"{"emails":[{"value":"a"},{"value":"b","value":"c"}]}"#,
        ] {
            let error = parse_object(body).unwrap_err();
            assert!(error.detail.starts_with("The request body has a duplicate key (line 1"), "{}", error.detail);
            assert!(!error.detail.contains("admin"));
        }
        // Same names in different objects are fine.
        assert!(parse_object(br#"{"a":{"value":1},"b":{"value":2}}"#).is_ok());
    }

    #[test]
    fn numbers_travel_as_written_or_are_refused() {
        for number in ["0", "-7", "123456789012345678", "0.000123456789", "1.5e-20", "2E+22", "-0.5", "1e2", "3.14159"]
        {
            let parsed = parse_object(format!(r#"{{"a":{number}}}"#).as_bytes()).unwrap();
            let expected: f64 = number.parse().unwrap();
            assert_eq!(parsed["a"].as_f64(), Some(expected), "{number}");
            let forwarded = serde_json::to_string(&parsed["a"]).unwrap();
            assert_eq!(forwarded.parse::<f64>().unwrap(), expected, "{number} -> {forwarded}");
        }
        let hundred_digits = "9".repeat(100);
        for number in
            ["1234567890123456789", &hundred_digits, "1.5e-400", "1e999", "1.5e-300", "0.1234567890123456", "1e23"]
        {
            let error = parse_object(format!(r#"{{"a":{number}}}"#).as_bytes()).unwrap_err();
            assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{number}");
        }
        // Digits inside strings are text, whatever their length.
        let quoted = format!(r#"{{"a":"{hundred_digits}","b\"{hundred_digits}":1}}"#);
        assert!(parse_object(quoted.as_bytes()).is_ok());
    }

    #[test]
    fn bodies_must_be_shallow_json_objects() {
        assert_eq!(parse_object(b"  ").unwrap_err().detail, "This request needs a JSON body");
        assert_eq!(parse_object(b"[]").unwrap_err().detail, "The request body is not a JSON object");
        assert!(parse_object(b"{\"a\":").unwrap_err().detail.starts_with("The request body is not valid JSON (line 1"));
        let deep = format!("{}{}", "{\"a\":".repeat(MAX_DEPTH), "1".to_string() + &"}".repeat(MAX_DEPTH));
        assert!(parse_object(deep.as_bytes()).unwrap_err().detail.contains("nested deeper"));
        let hostile = "[".repeat(100_000);
        assert!(parse_object(hostile.as_bytes()).is_err());
        let ok = format!("{}{}", "{\"a\":".repeat(MAX_DEPTH - 1), "1".to_string() + &"}".repeat(MAX_DEPTH - 1));
        assert!(parse_object(ok.as_bytes()).is_ok());
    }
}
