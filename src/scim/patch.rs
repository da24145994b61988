//! PATCH bodies (RFC 7644 §3.5.2): validated against the resource type's schemas and rewritten
//! into canonical PatchOp form — lower-case `op`s, canonical paths, typed values, one operation
//! per removed member — so a strict upstream accepts what Entra sends.

use serde_json::{Map, Value};

use super::filter::{parse_patch_path, resolve_attr, PatchPath};
use super::normalisation::{Changes, Normalisation};
use super::rules::{stripped_name, AttributeRules, Verdict, UNLISTED_CUSTOM};
use super::schema::{AttrRef, Mutability, ResourceSchema, Schema, PATCH_OP_URN};
use super::value::{
    check_attribute, check_single, invalid_syntax, invalid_value, object, parse_object, shown, take_message_schema,
};
use crate::scim_error::{ScimError, ScimType};

/// Most operations accepted in one PatchOp. Entra sends a handful; a group sync batches member
/// changes well below this.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Replace,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Replace => "replace",
        }
    }
}

/// Validates and normalises a PatchOp body, and applies the mapping: operations on unmapped
/// attributes are dropped. `None` when no operation is left: RFC 7644 §3.5.2 lets the edge answer
/// such a PATCH itself (204), since nothing would change.
pub fn prepare_patch(
    rules: &dyn AttributeRules,
    body: &[u8],
    changes: &mut Changes,
) -> Result<Option<Value>, ScimError> {
    let mut document = parse_object(body)?;
    take_message_schema(&mut document, PATCH_OP_URN)?;
    let mut operations = None;
    for (key, value) in document {
        if key.eq_ignore_ascii_case("Operations") {
            operations = Some(value);
        } else {
            return Err(invalid_syntax(format!(
                "Unknown member '{}' in PatchOp; expected schemas and Operations",
                shown(&key)
            )));
        }
    }
    let operations = match operations {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => return Err(invalid_value("'Operations' is empty")),
        _ => return Err(invalid_value("'Operations' is required: an array of operations")),
    };
    if operations.len() > MAX_OPERATIONS {
        return Err(invalid_value(format!("More than {MAX_OPERATIONS} operations in one PatchOp")));
    }
    let mut prepared = Vec::with_capacity(operations.len());
    for (index, operation) in operations.into_iter().enumerate() {
        prepare_operation(rules, index, operation, &mut prepared, changes)?;
    }
    if prepared.len() > MAX_OPERATIONS {
        return Err(invalid_value(format!("More than {MAX_OPERATIONS} operations in one PatchOp")));
    }
    prepared = rules.patch_contract(prepared)?;
    if prepared.is_empty() {
        return Ok(None);
    }
    Ok(Some(object(&mut [
        ("schemas", Value::Array(vec![PATCH_OP_URN.into()])),
        ("Operations", Value::Array(prepared)),
    ])))
}

/// An attribute of an open schema (Omni's custom attributes) that the configuration does not
/// list: valid, but mapped to nothing.
fn unlisted_custom(schema: &ResourceSchema, path: &str) -> bool {
    match schema.split_urn(path) {
        Some((Some(extension), rest)) => {
            extension.open && extension.attribute(rest.split(['.', '[']).next().unwrap_or_default()).is_none()
        }
        _ => false,
    }
}

/// Applies the mapping's verdict on an attribute an operation would send: `Ok(true)` to keep it.
fn admitted(rules: &dyn AttributeRules, attr: &AttrRef, changes: &mut Changes) -> Result<bool, ScimError> {
    match rules.verdict(attr) {
        Verdict::Forward => Ok(true),
        Verdict::Strip => {
            changes.strip(stripped_name(&attr.canonical()));
            Ok(false)
        }
        Verdict::Reject(error) => Err(error),
    }
}

fn prepare_operation(
    rules: &dyn AttributeRules,
    index: usize,
    operation: Value,
    out: &mut Vec<Value>,
    changes: &mut Changes,
) -> Result<(), ScimError> {
    let at = format!("Operations[{index}]");
    let Value::Object(fields) = operation else {
        return Err(invalid_syntax(format!("{at} is not a JSON object")));
    };
    let (mut op, mut path, mut value) = (None, None, None);
    for (key, field) in fields {
        match key.to_ascii_lowercase().as_str() {
            "op" => op = Some(field),
            "path" => path = Some(field),
            "value" => value = Some(field),
            _ => {
                return Err(invalid_syntax(format!(
                    "{at} has an unknown member '{}'; expected op, path, value",
                    shown(&key)
                )))
            }
        }
    }
    let op = match op.as_ref().and_then(Value::as_str) {
        Some(text) => {
            let op = match text.to_ascii_lowercase().as_str() {
                "add" => Op::Add,
                "remove" => Op::Remove,
                "replace" => Op::Replace,
                _ => return Err(invalid_syntax(format!("{at}.op must be add, remove or replace"))),
            };
            if text != op.as_str() {
                changes.note(Normalisation::OpCase);
            }
            op
        }
        None => return Err(invalid_syntax(format!("{at}.op is required: add, remove or replace"))),
    };
    let schema = rules.schema();
    let path = match path {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match schema.extension(&text) {
            Some(extension) => return whole_extension(rules, &at, op, extension, value, out, changes),
            None if unlisted_custom(schema, &text) => {
                changes.strip(UNLISTED_CUSTOM.to_string());
                return Ok(());
            }
            None => Some(parse_patch_path(&text, schema)?),
        },
        Some(_) => return Err(ScimError::bad_request(ScimType::InvalidPath, format!("{at}.path must be a string"))),
    };
    if let Some(path) = &path {
        let target = match path {
            PatchPath::Attr(attr) => *attr,
            PatchPath::Value { attr, sub_attribute, .. } => AttrRef { sub_attribute: *sub_attribute, ..*attr },
        };
        if path.target().mutability != Mutability::ReadOnly && !admitted(rules, &target, changes)? {
            return Ok(());
        }
    }
    let value = value.filter(|v| !v.is_null() || op != Op::Remove);

    match (op, path, value) {
        (Op::Remove, None, _) => {
            Err(ScimError::bad_request(ScimType::NoTarget, format!("{at}: remove needs a path (RFC 7644 §3.5.2.2)")))
        }
        (Op::Remove, Some(path), value) => remove(&at, path, value, out, changes),
        (_, _, None) => Err(invalid_syntax(format!("{at}: {} needs a value", op.as_str()))),
        (_, Some(path), Some(Value::Null)) => null_value(&at, op, path, out, changes),
        (_, Some(path), Some(value)) => {
            writable(&at, &path)?;
            let value = match &path {
                PatchPath::Attr(attr) if attr.sub_attribute.is_none() => {
                    check_attribute(attr.attribute, value, &attr.canonical(), changes)?
                }
                _ => Some(check_single(path.target(), value, &shown(&path.to_canonical()), changes)?),
            };
            // A whole complex value (`"path": "name"`, `"path": "emails[type eq \"work\"]"`) keeps
            // only the sub-attributes the mapping forwards, as in resources and pathless values.
            let value = value.and_then(|mut value| {
                match &path {
                    PatchPath::Attr(attr) | PatchPath::Value { attr, sub_attribute: None, .. }
                        if attr.sub_attribute.is_none() =>
                    {
                        rules.strip_sub_attributes(attr, &mut value, changes);
                    }
                    _ => {}
                }
                Some(value).filter(|v| v.as_object().is_none_or(|fields| !fields.is_empty()))
            });
            if let Some(value) = value {
                out.push(object(&mut [
                    ("op", op.as_str().into()),
                    ("path", path.to_canonical().into()),
                    ("value", value),
                ]));
            }
            Ok(())
        }
        (_, None, Some(value)) => pathless(rules, &at, op, value, out, changes),
    }
}

/// `remove`: with Entra's value list on a multi-valued attribute (`"path": "members", "value":
/// [{"value": "id1"}]`) it means removing those values: one RFC remove per value, each with a
/// value filter (RFC 7644 §3.5.2.2). Any other value on a remove is meaningless and dropped.
fn remove(
    at: &str,
    path: PatchPath,
    value: Option<Value>,
    out: &mut Vec<Value>,
    changes: &mut Changes,
) -> Result<(), ScimError> {
    writable(at, &path)?;
    if path.target().required {
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!("{at}: '{}' is required and cannot be removed", shown(&path.to_canonical())),
        ));
    }
    let canonical = path.to_canonical();
    let list_removal = match &path {
        PatchPath::Attr(attr) => {
            attr.sub_attribute.is_none()
                && attr.attribute.multi_valued
                && attr.attribute.sub_attribute("value").is_some()
        }
        PatchPath::Value { .. } => false,
    };
    match value {
        Some(Value::Array(items)) if list_removal => {
            if items.is_empty() {
                return Err(invalid_value(format!("{at}: the list of values to remove from '{canonical}' is empty")));
            }
            changes.note(Normalisation::MemberRemoval);
            for item in items {
                let Some(id) = item.get("value").and_then(Value::as_str) else {
                    return Err(invalid_value(format!("{at}: each value removed from '{canonical}' needs a 'value'")));
                };
                let quoted = serde_json::to_string(id).map_err(|_| invalid_value(format!("{at}: bad value")))?;
                out.push(remove_op(format!("{canonical}[value eq {quoted}]")));
            }
        }
        _ => out.push(remove_op(canonical)),
    }
    Ok(())
}

/// `replace` with `null` means unassigning (RFC 7643 §2.5): sent as the `remove` it is. An `add`
/// of `null` adds nothing and is dropped.
fn null_value(at: &str, op: Op, path: PatchPath, out: &mut Vec<Value>, changes: &mut Changes) -> Result<(), ScimError> {
    if op == Op::Add {
        changes.note(Normalisation::NullDropped);
        return Ok(());
    }
    changes.note(Normalisation::NullReplaceToRemove);
    remove(at, path, None, out, changes)
}

/// A pathless `add`/`replace` (RFC 7644 §3.5.2.1, §3.5.2.3): the value is an object of attributes.
/// Entra puts dotted (`name.givenName`) and URN-qualified keys in it, which are not attribute names
/// of the resource; each becomes an operation with that path.
fn pathless(
    rules: &dyn AttributeRules,
    at: &str,
    op: Op,
    value: Value,
    out: &mut Vec<Value>,
    changes: &mut Changes,
) -> Result<(), ScimError> {
    let schema = rules.schema();
    let Value::Object(attributes) = value else {
        return Err(invalid_value(format!("{at}: a {} without a path needs an object of attributes", op.as_str())));
    };
    let mut kept = Map::new();
    let mut split = Vec::new();
    for (key, value) in attributes {
        if let Some(extension) = schema.extension(&key) {
            // `{"urn:...:enterprise:2.0:User": {...}}`: the RFC's own nested form.
            let Value::Object(inner) = value else {
                return Err(invalid_value(format!("{at}: '{}' must be an object of its attributes", extension.id)));
            };
            for (name, value) in inner {
                if name.eq_ignore_ascii_case("schemas") {
                    // Some clients (scim2-models) serialise an extension with its own `schemas`.
                    changes.note(Normalisation::ForeignSchemaDropped);
                    continue;
                }
                let path = format!("{}:{name}", extension.id);
                if unlisted_custom(schema, &path) {
                    changes.strip(UNLISTED_CUSTOM.to_string());
                    continue;
                }
                let found = resolve_attr(schema, &path).ok_or_else(|| unknown(at, &path))?;
                split.push((found, value));
            }
            changes.note(Normalisation::PathlessValueSplit);
            continue;
        }
        if unlisted_custom(schema, &key) {
            changes.strip(UNLISTED_CUSTOM.to_string());
            continue;
        }
        let found = resolve_attr(schema, &key).ok_or_else(|| unknown(at, &key))?;
        if found.sub_attribute.is_some() || found.in_extension() {
            changes.note(Normalisation::PathlessValueSplit);
            split.push((found, value));
            continue;
        }
        let name = found.attribute.name;
        if name != key {
            changes.note(Normalisation::AttributeCase);
        }
        writable(at, &PatchPath::Attr(found))?;
        if !admitted(rules, &found, changes)? {
            continue;
        }
        if value.is_null() {
            null_value(at, op, PatchPath::Attr(found), out, changes)?;
        } else if let Some(mut value) = check_attribute(found.attribute, value, name, changes)? {
            rules.strip_sub_attributes(&found, &mut value, changes);
            if kept.insert(name.to_string(), value).is_some() {
                return Err(invalid_syntax(format!("{at}: attribute '{name}' appears more than once")));
            }
        }
    }
    if !kept.is_empty() {
        out.push(object(&mut [("op", op.as_str().into()), ("value", Value::Object(kept))]));
    }
    for (found, value) in split {
        let path = PatchPath::Attr(found);
        writable(at, &path)?;
        if !admitted(rules, &found, changes)? {
            continue;
        }
        if value.is_null() {
            null_value(at, op, path, out, changes)?;
            continue;
        }
        let canonical = found.canonical();
        let value = match found.sub_attribute {
            Some(sub) => Some(check_single(sub, value, &canonical, changes)?),
            None => check_attribute(found.attribute, value, &canonical, changes)?,
        };
        if let Some(value) = value {
            out.push(object(&mut [("op", op.as_str().into()), ("path", canonical.into()), ("value", value)]));
        }
    }
    Ok(())
}

/// A path that is an extension schema's URN addresses the whole extension (as clients such as
/// scim2-tester send it): `add`/`replace` of an object of its attributes is the pathless form
/// `{"<urn>": {...}}`; `remove` removes every attribute of the extension.
fn whole_extension(
    rules: &dyn AttributeRules,
    at: &str,
    op: Op,
    extension: &'static Schema,
    value: Option<Value>,
    out: &mut Vec<Value>,
    changes: &mut Changes,
) -> Result<(), ScimError> {
    if op == Op::Remove {
        if rules.strips_nothing() {
            out.push(remove_op(extension.id.to_string()));
        } else {
            // Removing a whole extension under a mapping: remove each mapped attribute of it.
            for attribute in extension.attributes {
                let attr = AttrRef { schema: Some(extension), attribute, sub_attribute: None };
                if matches!(rules.verdict(&attr), Verdict::Forward) {
                    out.push(remove_op(attr.canonical()));
                }
            }
        }
        return Ok(());
    }
    match value {
        Some(Value::Object(attributes)) => {
            let mut wrapped = Map::new();
            wrapped.insert(extension.id.to_string(), Value::Object(attributes));
            pathless(rules, at, op, Value::Object(wrapped), out, changes)
        }
        _ => Err(invalid_value(format!("{at}: the value for '{}' must be an object of its attributes", extension.id))),
    }
}

fn remove_op(path: String) -> Value {
    object(&mut [("op", "remove".into()), ("path", path.into())])
}

fn unknown(at: &str, name: &str) -> ScimError {
    ScimError::bad_request(ScimType::InvalidPath, format!("{at}: unknown attribute '{}'", shown(name)))
}

/// RFC 7644 §3.5.2: an operation on a `readOnly` attribute fails with `mutability`.
fn writable(at: &str, path: &PatchPath) -> Result<(), ScimError> {
    let attribute_read_only = |attr: &AttrRef| attr.attribute.mutability == Mutability::ReadOnly;
    let read_only = match path {
        PatchPath::Attr(attr) => attribute_read_only(attr) || attr.target().mutability == Mutability::ReadOnly,
        PatchPath::Value { attr, .. } => attribute_read_only(attr) || path.target().mutability == Mutability::ReadOnly,
    };
    if read_only {
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!("{at}: '{}' is read-only", shown(&path.to_canonical())),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
