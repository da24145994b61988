//! The properties the fuzz targets check, shared by `fuzz/fuzz_targets/*.rs` (under libFuzzer)
//! and `tests/fuzz_regressions.rs` (natively, under `cargo test`, over the committed corpus and
//! regressions). A violated property panics: libFuzzer records the input as a crash.
//!
//! Every check takes the raw bytes a fuzz target receives, so a corpus file means the same thing
//! to the fuzzer and to the regression test. Where a target needs more than one input (method,
//! policy, resource type), it runs the input under every combination instead of decoding a
//! selector from the bytes: corpus files stay readable (a JSON body, a request line, a filter).
//!
//! Properties, beyond "no panic":
//! - prepared output re-validates: feeding the serialised output back in gives `Ok`;
//! - normalising twice equals normalising once (and under the `rfc` policy the second pass records
//!   no normalisation at all);
//! - nothing unmapped survives stripping under the `omni` mappings;
//! - canonical forms round-trip (`parse(canonical(x)) == x`, `canonical` idempotent);
//! - error details never contain a value the client sent (checked by re-running each input with
//!   its values replaced by a marker);
//! - errors are 400 (bodies, queries), 404/405/501 (routes), 401 (tokens).

#![allow(dead_code)]

use std::cell::Cell;
use std::sync::OnceLock;

use scim_edge::auth::{bearer_token, is_token68, sha256_hex, AuthFailure, TokenEntry, TokenSet, MAX_TOKEN_LEN};
use scim_edge::config::Config;
use scim_edge::http::Method;
use scim_edge::mapping::{Mapping, Policy, Verdict};
use scim_edge::omni::Contract;
use scim_edge::route::{resolve, scope, Endpoint, ResourceType, Scope};
use scim_edge::scim::filter::{parse_filter, parse_patch_path, resolve_attr, Filter, PatchPath};
use scim_edge::scim::normalisation::Changes;
use scim_edge::scim::patch::prepare_patch;
use scim_edge::scim::query::parse_query;
use scim_edge::scim::resource::prepare_resource;
use scim_edge::scim::schema::{AttrRef, Mutability, ResourceSchema};
use scim_edge::scim::search::{prepare_search, search_request};
use scim_edge::scim_error::{ScimError, ScimType};
use serde_json::Value;

/// The fuzz targets, each a directory under `fuzz/corpus/` and `fuzz/regressions/`.
pub const TARGETS: &[&str] = &["resource", "patch", "filter", "query", "token", "search", "config"];

/// Runs the check of `target` on one input.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "resource" => check_resource(data),
        "patch" => check_patch(data),
        "filter" => check_filter(data),
        "query" => check_query(data),
        "token" => check_token(data),
        "search" => check_search(data),
        "config" => check_config(data),
        _ => panic!("unknown fuzz target {target}"),
    }
}

/// Whether an error detail is the one a finding produces.
pub type DetailTest = fn(&str) -> bool;

/// Findings reported but not fixed yet, each with a test on the error detail it produces. The fuzz
/// targets and the corpus check tolerate them ([`tolerate_open`]) so fuzzing keeps looking for new
/// ones; each has regression inputs `fuzz/regressions/<target>/open-*` that the regression test
/// runs strictly and that must still fail. When a fix lands: drop the entry, rename the files.
pub const OPEN: &[(&str, DetailTest)] = &[];

thread_local! {
    static TOLERATE_OPEN: Cell<bool> = const { Cell::new(false) };
}

/// Whether the checks on this thread tolerate the [`OPEN`] findings (off: strict).
pub fn tolerate_open(on: bool) {
    TOLERATE_OPEN.set(on);
}

fn open_finding(id: &str, detail: &str) -> bool {
    TOLERATE_OPEN.get() && OPEN.iter().any(|(open, matches)| *open == id && matches(detail))
}

/// Stands in for every value of an input when checking that errors never show values.
const MARKER: &str = "S3CR3T";

const PREFIX: &str = "/api/scim/v2";
const PUT_ID: &str = "2819c223-7f76-453a-919d-413861904646";

/// A configuration with an `omni` mapping that adds a custom Omni user attribute, a multi-valued
/// complex attribute and a sub-attribute, so the open schema, `Any` values and sub-attribute
/// stripping are exercised too.
const OMNI_CUSTOM_CONFIG: &str = r#"{
  "version": 1,
  "tokens": [{"name": "fuzz", "sha256": "0000000000000000000000000000000000000000000000000000000000000001"}],
  "upstream": {"cluster": "c", "authority": "omni.example", "base_path": "/api/scim/v2", "bearer_token": "k"},
  "mapping": {
    "profile": "omni",
    "users": {"add": ["urn:omni:params:1.0:UserAttribute:department", "emails", "name.givenName", "manager"]}
  }
}"#;

/// The mappings every body, query and search is checked under: `rfc` (strips nothing), the
/// default `omni` mapping, and an `omni` mapping with additions.
pub fn mappings() -> &'static [Mapping; 3] {
    static MAPPINGS: OnceLock<[Mapping; 3]> = OnceLock::new();
    MAPPINGS.get_or_init(|| {
        let rfc = Mapping { users: Policy::rfc(ResourceType::User), groups: Policy::rfc(ResourceType::Group) };
        let custom = Config::from_json(OMNI_CUSTOM_CONFIG.as_bytes(), &|_| None)
            .unwrap_or_else(|e| panic!("the fuzz configuration does not compile: {e}"))
            .mapping;
        [rfc, Mapping::omni_default(), custom]
    })
}

fn policies() -> impl Iterator<Item = &'static Policy> {
    mappings().iter().flat_map(|m| [&m.users, &m.groups])
}

fn ascii_contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Replaces every string leaf of a JSON value (not object keys) with [`MARKER`].
fn mask_values(value: &mut Value) {
    match value {
        Value::String(text) => *text = MARKER.to_string(),
        Value::Array(items) => items.iter_mut().for_each(mask_values),
        Value::Object(map) => map.values_mut().for_each(mask_values),
        _ => {}
    }
}

/// Replaces the content of every string literal (`"..."`, with `\` escapes) of a filter or path
/// with [`MARKER`]. An unterminated literal is left as it is.
fn mask_literals(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        let mut escaped = false;
        let close = after.char_indices().find(|&(_, c)| {
            let end = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            end
        });
        match close {
            Some((at, _)) => {
                out.push_str(MARKER);
                out.push('"');
                rest = &after[at + 1..];
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn assert_no_marker(error: &ScimError, what: &str) {
    if open_finding("patch-detail-quotes-value-path", &error.detail) {
        return;
    }
    assert!(!error.detail.contains(MARKER), "{what}: the error detail shows a client value: {}", error.detail);
}

fn assert_bad_request(error: &ScimError, what: &str) {
    assert_eq!(error.status, 400, "{what}: {}", error.detail);
    assert!(error.scim_type.is_some(), "{what}: a 400 without scimType: {}", error.detail);
    assert!(!error.detail.is_empty(), "{what}: empty detail");
}

/// The top-level attribute a response or request key names, if it is in canonical form.
fn canonical_core(schema: &ResourceSchema, key: &str) -> Option<AttrRef> {
    schema.core_attribute(key).filter(|a| a.attribute.name == key)
}

/// Asserts that a value of the top-level attribute `attr` carries only mapped parts: the attribute
/// itself is mapped (or one of its sub-attributes is), and when only sub-attributes are mapped,
/// each object of the value has only those.
fn assert_mapped_value(policy: &Policy, attr: &AttrRef, value: Option<&Value>, what: &str) {
    let canonical = attr.canonical();
    assert!(policy.allows_any_part(attr), "{what}: unmapped attribute '{canonical}' survived stripping");
    assert_ne!(policy.verdict(attr), Verdict::Strip, "{what}: '{canonical}' would be stripped");
    if policy.allows(attr) || !attr.attribute.is_complex() {
        return;
    }
    let items: Vec<&Value> = match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    };
    for item in items {
        let Value::Object(map) = item else { continue };
        for key in map.keys() {
            let sub = attr.attribute.sub_attribute(key);
            let mapped = sub.is_some_and(|sub| policy.allows(&AttrRef { sub_attribute: Some(sub), ..*attr }));
            assert!(mapped, "{what}: unmapped sub-attribute '{canonical}.{key}' survived stripping");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// resource: POST/PUT bodies through prepare_resource.

/// Every policy (rfc, omni default, omni with additions; Users and Groups) and both methods.
pub fn check_resource(data: &[u8]) {
    let masked = masked_body(data, |document| {
        for (key, value) in document.iter_mut() {
            if !key.eq_ignore_ascii_case("schemas") {
                mask_values(value);
            }
        }
    });
    for policy in policies() {
        for (method, id) in [(Method::Post, None), (Method::Put, Some(PUT_ID))] {
            let what =
                format!("{} {} ({})", method.as_str(), policy.resource_type().endpoint(), policy.profile.as_str());
            let mut changes = Changes::default();
            match prepare_resource(policy, method, id, data, &mut changes) {
                Ok(prepared) => check_prepared_resource(policy, method, id, &prepared, &what),
                Err(error) => assert_bad_request(&error, &what),
            }
            if let Some(masked) = &masked {
                if let Err(error) = prepare_resource(policy, method, id, masked, &mut Changes::default()) {
                    assert_no_marker(&error, &what);
                    assert_bad_request(&error, &what);
                }
            }
        }
    }
}

/// The input with its values masked, when it is a JSON object that does not already hold the
/// marker anywhere (then a marker in an error would come from a key, which errors may name).
fn masked_body(data: &[u8], mask: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Option<Vec<u8>> {
    if ascii_contains(data, MARKER) {
        return None;
    }
    let Ok(Value::Object(mut document)) = serde_json::from_slice::<Value>(data) else {
        return None;
    };
    mask(&mut document);
    serde_json::to_vec(&Value::Object(document)).ok()
}

fn check_prepared_resource(policy: &Policy, method: Method, id: Option<&str>, prepared: &Value, what: &str) {
    let schema = policy.schema;
    let Value::Object(document) = prepared else { panic!("{what}: prepared body is not an object") };

    // Canonical form: schemas lists the core schema; core attributes are top-level with their
    // canonical names; extensions are nested, non-empty and declared; nothing read-only.
    let declared: Vec<&str> = match document.get("schemas") {
        Some(Value::Array(items)) => {
            items.iter().map(|i| i.as_str().unwrap_or_else(|| panic!("{what}: non-string schema"))).collect()
        }
        _ => panic!("{what}: prepared body has no schemas array"),
    };
    assert!(declared.contains(&schema.core.id), "{what}: schemas lacks the core schema: {declared:?}");
    for (key, value) in document {
        if key == "schemas" {
            continue;
        }
        if let Some(extension) = schema.extensions.iter().find(|e| e.id == key) {
            let Value::Object(inner) = value else { panic!("{what}: extension '{key}' is not an object") };
            assert!(!inner.is_empty(), "{what}: empty extension '{key}'");
            assert!(declared.contains(&extension.id), "{what}: extension '{key}' in use but not in schemas");
            for (name, value) in inner {
                if extension.open && extension.attribute(name).is_none() {
                    panic!("{what}: unlisted custom attribute '{key}:{name}' survived");
                }
                let attribute = extension.attribute(name).unwrap_or_else(|| panic!("{what}: unknown '{key}:{name}'"));
                assert_eq!(attribute.name, name, "{what}: non-canonical name '{key}:{name}'");
                assert_ne!(attribute.mutability, Mutability::ReadOnly, "{what}: read-only '{key}:{name}' kept");
                if !policy.strips_nothing {
                    let attr = AttrRef { schema: Some(extension), attribute, sub_attribute: None };
                    assert_mapped_value(policy, &attr, Some(value), what);
                }
            }
            continue;
        }
        let attr = canonical_core(schema, key).unwrap_or_else(|| panic!("{what}: unknown or non-canonical '{key}'"));
        assert_ne!(attr.attribute.mutability, Mutability::ReadOnly, "{what}: read-only '{key}' kept");
        assert!(!value.is_null(), "{what}: null '{key}' kept");
        if !policy.strips_nothing {
            assert_mapped_value(policy, &attr, Some(value), what);
        }
    }
    if policy.contract == Contract::Omni {
        for urn in &declared {
            assert!(
                *urn == schema.core.id || document.contains_key(*urn),
                "{what}: omni body declares unused schema {urn}"
            );
        }
    }

    // Re-validates, and normalising again changes nothing.
    let bytes = serde_json::to_vec(prepared).unwrap_or_else(|e| panic!("{what}: cannot serialise: {e}"));
    let mut again = Changes::default();
    let second = prepare_resource(policy, method, id, &bytes, &mut again)
        .unwrap_or_else(|e| panic!("{what}: prepared body does not re-validate: {} ({})", e.detail, prepared));
    assert_eq!(&second, prepared, "{what}: normalising twice differs from once");
    assert!(again.is_empty(), "{what}: second pass still normalises: {:?} ({prepared})", again.kinds());
    assert!(again.stripped().is_empty(), "{what}: second pass still strips {:?} ({prepared})", again.stripped());
}

// ---------------------------------------------------------------------------------------------
// patch: PatchOp bodies through prepare_patch.

pub fn check_patch(data: &[u8]) {
    let masked = masked_body(data, |document| {
        for (key, value) in document.iter_mut() {
            if !key.eq_ignore_ascii_case("operations") {
                continue;
            }
            for operation in value.as_array_mut().into_iter().flatten() {
                for (name, field) in operation.as_object_mut().into_iter().flatten() {
                    match (name.to_ascii_lowercase().as_str(), field) {
                        ("value", field) => mask_values(field),
                        ("path", Value::String(path)) => *path = mask_literals(path),
                        _ => {}
                    }
                }
            }
        }
    });
    for policy in policies() {
        let what = format!("PATCH {} ({})", policy.resource_type().endpoint(), policy.profile.as_str());
        let mut changes = Changes::default();
        match prepare_patch(policy, data, &mut changes) {
            Ok(Some(prepared)) => check_prepared_patch(policy, &prepared, &what),
            Ok(None) => {}
            Err(error) => assert_bad_request(&error, &what),
        }
        if let Some(masked) = &masked {
            if let Err(error) = prepare_patch(policy, masked, &mut Changes::default()) {
                assert_no_marker(&error, &what);
                assert_bad_request(&error, &what);
            }
        }
    }
}

fn check_prepared_patch(policy: &Policy, prepared: &Value, what: &str) {
    let schema = policy.schema;
    let operations = prepared.get("Operations").and_then(Value::as_array);
    let operations = operations.unwrap_or_else(|| panic!("{what}: no Operations in {prepared}"));
    assert!(!operations.is_empty(), "{what}: Some(PatchOp) with no operation");
    for operation in operations {
        let op = operation.get("op").and_then(Value::as_str).unwrap_or_default();
        assert!(matches!(op, "add" | "remove" | "replace"), "{what}: op '{op}' is not canonical");
        let value = operation.get("value");
        match operation.get("path") {
            Some(Value::String(path)) => {
                if let Some(extension) = schema.extension(path) {
                    // Removing a whole extension: only when nothing is stripped.
                    assert!(policy.strips_nothing && op == "remove", "{what}: operation on all of {}", extension.id);
                    continue;
                }
                let parsed = parse_patch_path(path, schema)
                    .unwrap_or_else(|e| panic!("{what}: prepared path '{path}' does not parse: {}", e.detail));
                assert_eq!(&parsed.to_canonical(), path, "{what}: prepared path is not canonical");
                if !policy.strips_nothing {
                    let target = match &parsed {
                        PatchPath::Attr(attr) => *attr,
                        PatchPath::Value { attr, sub_attribute, .. } => {
                            AttrRef { sub_attribute: *sub_attribute, ..*attr }
                        }
                    };
                    if target.sub_attribute.is_none() {
                        assert_mapped_value(policy, &target, value, what);
                    } else {
                        assert_eq!(policy.verdict(&target), Verdict::Forward, "{what}: unmapped '{path}' survived");
                    }
                }
            }
            Some(other) => panic!("{what}: path is not a string: {other}"),
            None => {
                assert!(op != "remove", "{what}: remove without a path");
                let Some(Value::Object(attributes)) = value else { panic!("{what}: pathless op without object") };
                for (key, value) in attributes {
                    let attr = canonical_core(schema, key)
                        .unwrap_or_else(|| panic!("{what}: pathless key '{key}' is not a canonical attribute"));
                    if !policy.strips_nothing {
                        assert_mapped_value(policy, &attr, Some(value), what);
                    }
                }
            }
        }
    }

    let bytes = serde_json::to_vec(prepared).unwrap_or_else(|e| panic!("{what}: cannot serialise: {e}"));
    let mut again = Changes::default();
    let second = match prepare_patch(policy, &bytes, &mut again) {
        Err(e) if open_finding("omni-contract-refuses-its-own-split", &e.detail) => return,
        Err(e) => panic!("{what}: prepared PatchOp does not re-validate: {} ({prepared})", e.detail),
        Ok(second) => second,
    };
    assert_eq!(second.as_ref(), Some(prepared), "{what}: normalising twice differs from once");
    assert!(again.stripped().is_empty(), "{what}: second pass still strips {:?} ({prepared})", again.stripped());
    if policy.strips_nothing {
        assert!(again.is_empty(), "{what}: second pass still normalises: {:?} ({prepared})", again.kinds());
    }
}

// ---------------------------------------------------------------------------------------------
// filter: filters and PATCH paths.

pub fn check_filter(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let mut schemas: Vec<&'static ResourceSchema> =
        vec![ResourceSchema::for_type(ResourceType::User), ResourceSchema::for_type(ResourceType::Group)];
    schemas.push(mappings()[2].users.schema);
    let masked = (!ascii_contains(data, MARKER)).then(|| mask_literals(input));
    for schema in schemas {
        let what = format!("filter on {}", schema.resource_type.endpoint());
        match parse_filter(input, schema) {
            Ok(filter) => {
                let canonical = filter.to_canonical();
                let reparsed = parse_filter(&canonical, schema)
                    .unwrap_or_else(|e| panic!("{what}: canonical '{canonical}' does not parse: {}", e.detail));
                assert_eq!(reparsed, filter, "{what}: '{input}' -> '{canonical}' parses to another filter");
                assert_eq!(reparsed.to_canonical(), canonical, "{what}: canonical form is not stable");
            }
            Err(error) => {
                assert_bad_request(&error, &what);
                assert_eq!(error.scim_type, Some(ScimType::InvalidFilter), "{what}: {}", error.detail);
            }
        }
        match parse_patch_path(input, schema) {
            Ok(path) => {
                let canonical = path.to_canonical();
                let reparsed = parse_patch_path(&canonical, schema)
                    .unwrap_or_else(|e| panic!("{what}: canonical path '{canonical}' does not parse: {}", e.detail));
                assert_eq!(reparsed, path, "{what}: path '{input}' -> '{canonical}' parses to another path");
                assert_eq!(reparsed.to_canonical(), canonical, "{what}: canonical path is not stable");
            }
            Err(error) => {
                assert_bad_request(&error, &what);
                assert!(
                    matches!(error.scim_type, Some(ScimType::InvalidPath | ScimType::InvalidFilter)),
                    "{what}: {}",
                    error.detail
                );
            }
        }
        if let Some(masked) = &masked {
            for text in [masked.clone(), format!("externalId eq \"{MARKER}\" and {masked}")] {
                if let Err(error) = parse_filter(&text, schema) {
                    assert_no_marker(&error, &what);
                }
                if let Err(error) = parse_patch_path(&text, schema) {
                    assert_no_marker(&error, &what);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// query: `METHOD SP :path` through scope, resolve and parse_query.

pub fn check_query(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else { return };
    let (method, path) = line.split_once(' ').unwrap_or(("GET", line));
    let Scope::Scim { rest, query } = scope(PREFIX, path) else {
        assert!(!path.starts_with(&format!("{PREFIX}/")) && path != PREFIX && !path.starts_with(&format!("{PREFIX}?")));
        return;
    };
    assert!(path.starts_with(PREFIX), "{path}: in scope without the prefix");
    let route = match resolve(method, rest, query) {
        Ok(route) => route,
        Err(error) => {
            assert!(matches!(error.status, 404 | 405 | 501), "{line}: {} {}", error.status, error.detail);
            return;
        }
    };
    // What is forwarded is exactly what the client sent below the prefix.
    assert_eq!(route.endpoint.path(), rest, "{line}: forwarded path differs");
    assert_eq!(route.query, query);
    assert!(route.endpoint.allowed_methods().contains(&route.method));
    let resource_type = match &route.endpoint {
        Endpoint::Collection(rt) | Endpoint::Resource(rt, _) => *rt,
        Endpoint::Discovery(..) | Endpoint::Search(_) => return,
    };
    let collection = matches!(route.endpoint, Endpoint::Collection(_)) && route.method == Method::Get;
    for mapping in mappings() {
        let policy = mapping.policy(resource_type);
        let what = format!("{line} ({})", policy.profile.as_str());
        let parsed = match parse_query(query, route.method, collection, policy.schema) {
            Ok(parsed) => parsed,
            Err(error) => {
                assert_bad_request(&error, &what);
                continue;
            }
        };
        // The canonical query string round-trips.
        let canonical = parsed.to_query_string();
        let reparsed = parse_query(&canonical, route.method, collection, policy.schema)
            .unwrap_or_else(|e| panic!("{what}: canonical '{canonical}' does not parse: {}", e.detail));
        assert_eq!(reparsed, parsed, "{what}: '{canonical}' parses to another query");
        assert_eq!(reparsed.to_query_string(), canonical, "{what}: canonical query is not stable");

        // What the exchange forwards: restricted to the mapping, contracted, capped.
        let (forwarded, stripped) = forward_query(policy, parsed, route.method, collection, &what);
        let Some(forwarded) = forwarded else { continue };
        let (again, stripped_again) = forward_query(policy, forwarded.clone(), route.method, collection, &what);
        assert!(stripped_again.is_empty(), "{what}: second pass still strips {stripped_again:?} (first {stripped:?})");
        assert_eq!(again.as_ref(), Some(&forwarded), "{what}: preparing the query twice differs from once");
    }
}

/// Restricts, contracts and caps a query as the exchange does; the query string re-parsed, or
/// `None` when it can match nothing; and what was stripped.
fn forward_query(
    policy: &Policy,
    mut query: scim_edge::scim::query::Query,
    method: Method,
    collection: bool,
    what: &str,
) -> (Option<scim_edge::scim::query::Query>, Vec<String>) {
    let mut changes = Changes::default();
    if !policy.restrict_query(&mut query, &mut changes) {
        return (None, changes.stripped().to_vec());
    }
    assert_query_mapped(policy, &query, what);
    policy.contract.query(policy.resource_type(), &mut query);
    query.cap_count();
    let text = query.to_query_string();
    let forwarded = parse_query(&text, method, collection, policy.schema)
        .unwrap_or_else(|e| panic!("{what}: forwarded query '{text}' does not re-validate: {}", e.detail));
    assert_query_mapped(policy, &forwarded, what);
    (Some(forwarded), changes.stripped().to_vec())
}

fn assert_query_mapped(policy: &Policy, query: &scim_edge::scim::query::Query, what: &str) {
    if policy.strips_nothing {
        return;
    }
    if let Some(filter) = &query.filter {
        assert_filter_mapped(policy, filter, what);
    }
    for path in query.attributes.iter().chain(&query.excluded_attributes).chain(&query.sort_by) {
        let attr = resolve_attr(policy.schema, path).unwrap_or_else(|| panic!("{what}: '{path}' does not resolve"));
        assert!(policy.allows_any_part(&attr), "{what}: unmapped '{path}' survived in the query");
    }
}

fn assert_filter_mapped(policy: &Policy, filter: &Filter, what: &str) {
    match filter {
        Filter::Present(attr) | Filter::Compare(attr, ..) => {
            assert!(policy.allows(attr), "{what}: unmapped '{}' survived in the filter", attr.canonical());
        }
        Filter::ValuePath(attr, inner) => {
            assert!(policy.allows_any_part(attr), "{what}: unmapped '{}' survived in the filter", attr.canonical());
            assert_filter_mapped(policy, inner, what);
        }
        Filter::Not(inner) => assert_filter_mapped(policy, inner, what),
        Filter::And(a, b) | Filter::Or(a, b) => {
            assert_filter_mapped(policy, a, what);
            assert_filter_mapped(policy, b, what);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// token: Authorization header values.

pub fn check_token(data: &[u8]) {
    let fixed = TokenEntry { name: "fixed".into(), sha256: digest(b"fixed-token") };
    let set = TokenSet::new(vec![fixed.clone()]);
    assert_eq!(set.authenticate(None), Err(AuthFailure::Missing));
    match bearer_token(data) {
        None => assert_eq!(set.authenticate(Some(data)), Err(AuthFailure::Malformed)),
        Some(token) => {
            assert!(!token.is_empty() && token.len() <= MAX_TOKEN_LEN && is_token68(token), "{data:?}");
            assert!(data.windows(token.len()).any(|w| w == token), "the token is not part of the header");
            assert!(data.trim_ascii_start().get(..6).is_some_and(|s| s.eq_ignore_ascii_case(b"bearer")));
            let canonical = [b"Bearer ".as_slice(), token].concat();
            assert_eq!(bearer_token(&canonical), Some(token));
            let expected = if token == b"fixed-token" { Ok("fixed") } else { Err(AuthFailure::Invalid) };
            assert_eq!(set.authenticate(Some(data)), expected);
            // A set that holds this token's digest accepts it under its name, wherever it is.
            let own = TokenEntry { name: "own".into(), sha256: digest(token) };
            let other = TokenEntry { name: "other".into(), sha256: digest(b"other-token") };
            if token != b"other-token" && token != b"fixed-token" {
                for entries in [vec![own.clone()], vec![fixed.clone(), own.clone()], vec![own.clone(), other.clone()]] {
                    assert_eq!(TokenSet::new(entries).authenticate(Some(data)), Ok("own"));
                }
            }
        }
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    let hex = sha256_hex(token);
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("00"), 16).unwrap_or(0);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// search: SearchRequest bodies through prepare_search.

pub fn check_search(data: &[u8]) {
    let masked = masked_body(data, |document| {
        for (key, value) in document.iter_mut() {
            if let (true, Value::String(filter)) = (key.eq_ignore_ascii_case("filter"), &mut *value) {
                *filter = mask_literals(filter);
            }
        }
    });
    for mapping in mappings() {
        let sets: [Vec<&Policy>; 3] =
            [vec![&mapping.users], vec![&mapping.groups], vec![&mapping.users, &mapping.groups]];
        for policies in sets {
            let what = format!("search {:?} ({})", policies.len(), mapping.users.profile.as_str());
            match prepare_search(&policies, data, &mut Changes::default()) {
                Ok(Some((query, policy))) => check_prepared_search(policy, &query, &what),
                Ok(None) => {}
                Err(error) => assert_bad_request(&error, &what),
            }
            if let Some(masked) = &masked {
                if let Err(error) = prepare_search(&policies, masked, &mut Changes::default()) {
                    assert_no_marker(&error, &what);
                }
            }
        }
    }
}

fn check_prepared_search(policy: &Policy, query: &scim_edge::scim::query::Query, what: &str) {
    assert_query_mapped(policy, query, what);
    assert!(query.count.is_none_or(|c| c <= scim_edge::scim::query::MAX_RESULTS), "{what}: count not capped");
    let request = search_request(query);
    let bytes = serde_json::to_vec(&request).unwrap_or_else(|e| panic!("{what}: cannot serialise: {e}"));
    let mut again = Changes::default();
    let second = prepare_search(&[policy], &bytes, &mut again)
        .unwrap_or_else(|e| panic!("{what}: canonical SearchRequest does not re-validate: {} ({request})", e.detail));
    let (second, _) = second.unwrap_or_else(|| panic!("{what}: canonical SearchRequest matches nothing ({request})"));
    assert_eq!(&second, query, "{what}: preparing the search twice differs from once ({request})");
    assert!(again.stripped().is_empty(), "{what}: second pass still strips {:?}", again.stripped());
    assert!(again.is_empty(), "{what}: second pass still normalises {:?}", again.kinds());
    // Under omni the search is sent as the equivalent GET: that query string must re-validate.
    if policy.contract == Contract::Omni {
        let mut get = query.clone();
        policy.contract.query(policy.resource_type(), &mut get);
        let text = get.to_query_string();
        parse_query(&text, Method::Get, true, policy.schema)
            .unwrap_or_else(|e| panic!("{what}: the GET for the search ('{text}') does not re-validate: {}", e.detail));
    }
}

// ---------------------------------------------------------------------------------------------
// config: the plugin configuration.

/// What `bearer_token_env` resolves to: must never show in a compiled configuration's Debug.
const ENV_TOKEN: &str = "EnvT0kenZ9";

pub fn check_config(data: &[u8]) {
    let env = |_: &str| Some(ENV_TOKEN.to_string());
    let result = Config::from_json(data, &env);
    // A marker only in values (never in keys, which errors may name) never shows in an error.
    let marker_only_in_values = ascii_contains(data, MARKER)
        && serde_json::from_slice::<Value>(data).is_ok_and(|document| !key_contains(&document, MARKER));
    match result {
        Ok(config) => {
            let shown = format!("{config:?}");
            if !ascii_contains(data, ENV_TOKEN) {
                assert!(!shown.contains(ENV_TOKEN), "the configuration's Debug shows the upstream credential");
            }
            let inline = serde_json::from_slice::<Value>(data)
                .ok()
                .and_then(|d| d.get("upstream")?.get("bearer_token")?.as_str().map(str::trim).map(str::to_string));
            if let Some(token) = inline.filter(|t| t.contains(MARKER) && data_count(data, t) == 1) {
                assert!(!shown.contains(&token), "the configuration's Debug shows the upstream credential");
            }
            let users = format!("{}/Users", config.scim_prefix);
            assert_eq!(scope(&config.scim_prefix, &users), Scope::Scim { rest: "Users", query: "" });
        }
        Err(error) => {
            // (`field` may be empty: an unknown key `""` is named as it is.)
            assert!(!error.reason.is_empty(), "{error:?}");
            if marker_only_in_values {
                assert!(!error.to_string().contains(MARKER), "a configuration error shows a value: {error}");
            }
        }
    }
}

fn key_contains(value: &Value, needle: &str) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|v| key_contains(v, needle)),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.to_ascii_lowercase().contains(&needle.to_ascii_lowercase()) || key_contains(v, needle)),
        _ => false,
    }
}

fn data_count(data: &[u8], needle: &str) -> usize {
    data.windows(needle.len().max(1)).filter(|w| *w == needle.as_bytes()).count()
}
