//! Resource bodies of create (POST, RFC 7644 §3.3) and replace (PUT, §3.5.1): validated against
//! the resource type's schemas and rewritten into canonical form.
//!
//! Canonical form: `schemas` lists the core schema and the extensions in use and nothing else;
//! core attributes are top-level with the schema's spelling; extension attributes are nested under
//! their schema URN; read-only attributes and nulls are gone (RFC 7644 §3.3: read-only values
//! "SHALL be ignored").

use serde_json::{Map, Value};

use super::normalisation::{Changes, Normalisation};
use super::rules::{stripped_name, AttributeRules, Verdict, UNLISTED_CUSTOM};
use super::schema::{AttrRef, Mutability, ResourceSchema, Schema};
use super::value::{check_attribute, invalid_syntax, invalid_value, object, parse_object, shown};
use crate::http::Method;
use crate::scim_error::{ScimError, ScimType};
use crate::text::comma_join;

/// Schema URNs Entra adds that are not SCIM schemas; dropped from `schemas`.
const FOREIGN_SCHEMAS: &[&str] = &["http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"];

/// Validates and normalises a POST or PUT body. `resource_id` is the id in the URL of a PUT.
pub fn prepare_resource(
    rules: &dyn AttributeRules,
    method: Method,
    resource_id: Option<&str>,
    body: &[u8],
    changes: &mut Changes,
) -> Result<Value, ScimError> {
    let schema = rules.schema();
    let document = parse_object(body)?;
    let mut declared: Option<Vec<&'static str>> = None;
    let mut core = Map::new();
    let mut extensions: Vec<(&'static Schema, Map<String, Value>)> = Vec::new();

    for (key, value) in document {
        if key.eq_ignore_ascii_case("schemas") {
            declared = Some(schemas(schema, value, changes)?);
            continue;
        }
        if value.is_null() {
            changes.note(Normalisation::NullDropped);
            continue;
        }
        if let Some(extension) = schema.extension(&key) {
            // The nested form: `"urn:...:enterprise:2.0:User": {...}`.
            let Value::Object(attributes) = value else {
                return Err(invalid_value(format!("'{}' must be a JSON object of its attributes", extension.id)));
            };
            for (name, value) in attributes {
                if name.eq_ignore_ascii_case("schemas") {
                    // Some clients (scim2-models) serialise an extension with its own `schemas`.
                    changes.note(Normalisation::ForeignSchemaDropped);
                    continue;
                }
                put_extension_attribute(rules, &mut extensions, extension, &name, value, changes)?;
            }
            continue;
        }
        match schema.split_urn(&key) {
            Some((Some(extension), name)) if !std::ptr::eq(extension, schema.core) => {
                // Entra's flat form: `"urn:...:enterprise:2.0:User:employeeNumber": "42"`.
                changes.note(Normalisation::FlatExtension);
                put_extension_attribute(rules, &mut extensions, extension, name, value, changes)?;
            }
            Some((Some(_core), name)) => {
                changes.note(Normalisation::AttributeCase);
                put_core_attribute(rules, &mut core, method, resource_id, name, value, changes)?;
            }
            Some((None, name)) => put_core_attribute(rules, &mut core, method, resource_id, name, value, changes)?,
            None => return Err(invalid_value(format!("Unknown attribute '{}'", shown(&key)))),
        }
    }

    let mut declared =
        declared.ok_or_else(|| invalid_value(format!("'schemas' is required; it must list {}", schema.core.id)))?;
    for required in schema.core.attributes.iter().filter(|a| a.required) {
        match core.get(required.name) {
            Some(Value::String(text)) if !text.is_empty() => {}
            _ => return Err(invalid_value(format!("Required attribute '{}' is missing or empty", required.name))),
        }
    }

    rules.resource_contract(method, &mut core, &mut declared, &extensions)?;
    let mut document = Map::new();
    for (extension, attributes) in extensions {
        if attributes.is_empty() {
            continue;
        }
        if !declared.contains(&extension.id) {
            changes.note(Normalisation::SchemaAdded);
            declared.push(extension.id);
        }
        document.insert(extension.id.to_string(), Value::Object(attributes));
    }
    document.insert("schemas".to_string(), Value::from(declared));
    document.extend(core);
    Ok(Value::Object(document))
}

/// The `schemas` list: the endpoint's core schema must be there; known extensions are kept,
/// Entra's foreign URNs dropped, anything else refused.
fn schemas(schema: &ResourceSchema, value: Value, changes: &mut Changes) -> Result<Vec<&'static str>, ScimError> {
    let Value::Array(items) = value else {
        return Err(invalid_value("'schemas' must be an array of schema URNs"));
    };
    let mut declared = Vec::new();
    for item in items {
        let Value::String(urn) = item else {
            return Err(invalid_value("'schemas' must be an array of schema URNs"));
        };
        if let Some(known) = schema.schema_ids().find(|id| id.eq_ignore_ascii_case(&urn)) {
            if !declared.contains(&known) {
                declared.push(known);
            }
        } else if FOREIGN_SCHEMAS.iter().any(|f| f.eq_ignore_ascii_case(&urn)) {
            changes.note(Normalisation::ForeignSchemaDropped);
        } else {
            let accepted = comma_join(&mut schema.schema_ids());
            return Err(invalid_value(format!(
                "Unknown schema in 'schemas'; a {} accepts {accepted}",
                schema.core.id.rsplit(':').next().unwrap_or_default(),
            )));
        }
    }
    if !declared.contains(&schema.core.id) {
        return Err(invalid_value(format!("'schemas' must include {}", schema.core.id)));
    }
    Ok(declared)
}

fn put_core_attribute(
    rules: &dyn AttributeRules,
    core: &mut Map<String, Value>,
    method: Method,
    resource_id: Option<&str>,
    name: &str,
    value: Value,
    changes: &mut Changes,
) -> Result<(), ScimError> {
    let Some(found) = rules.schema().core_attribute(name) else {
        return Err(invalid_value(format!("Unknown attribute '{}'", shown(name))));
    };
    let attribute = found.attribute;
    if attribute.name != name {
        changes.note(Normalisation::AttributeCase);
    }
    if attribute.mutability == Mutability::ReadOnly {
        // RFC 7644 §3.5.1: a PUT may carry `id`, but it cannot change it.
        if attribute.name == "id" && method == Method::Put && value.as_str() != resource_id {
            return Err(ScimError::bad_request(
                ScimType::Mutability,
                "'id' in the body differs from the id in the URL",
            ));
        }
        changes.note(if attribute.name == "meta" {
            Normalisation::MetaDropped
        } else {
            Normalisation::ReadOnlyDropped
        });
        return Ok(());
    }
    // The mapping's verdict comes before the value's check: an attribute that is stripped never
    // reaches the upstream, so the shape a client sends it in cannot fail the request.
    match rules.verdict(&found) {
        Verdict::Reject(error) => return Err(error),
        Verdict::Strip => {
            changes.strip(stripped_name(attribute.name));
            return Ok(());
        }
        Verdict::Forward => {}
    }
    let Some(mut value) = check_attribute(attribute, value, attribute.name, changes)? else {
        return Ok(());
    };
    rules.strip_sub_attributes(&found, &mut value, changes);
    if core.insert(attribute.name.to_string(), value).is_some() {
        return Err(invalid_syntax(format!("Attribute '{}' appears more than once", attribute.name)));
    }
    Ok(())
}

fn put_extension_attribute(
    rules: &dyn AttributeRules,
    extensions: &mut Vec<(&'static Schema, Map<String, Value>)>,
    extension: &'static Schema,
    name: &str,
    value: Value,
    changes: &mut Changes,
) -> Result<(), ScimError> {
    let (name, sub) = match name.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (name, None),
    };
    let Some(attribute) = extension.attribute(name) else {
        if extension.open {
            changes.strip(UNLISTED_CUSTOM.to_string());
            return Ok(());
        }
        return Err(invalid_value(format!("Unknown attribute '{}'", shown(&format!("{}:{name}", extension.id)))));
    };
    if attribute.name != name {
        changes.note(Normalisation::AttributeCase);
    }
    let path = format!("{}:{}", extension.id, attribute.name);
    // A flat sub-attribute (`...:User:manager.value`) is the complex value `{"value": ...}`.
    let value = match sub {
        Some(sub) => object(&mut [(sub, value)]),
        None => value,
    };
    if attribute.mutability == Mutability::ReadOnly {
        changes.note(Normalisation::ReadOnlyDropped);
        return Ok(());
    }
    if value.is_null() {
        changes.note(Normalisation::NullDropped);
        return Ok(());
    }
    // As for core attributes: the verdict first, so a stripped attribute's shape cannot fail.
    let found = AttrRef { schema: Some(extension), attribute, sub_attribute: None };
    match rules.verdict(&found) {
        Verdict::Reject(error) => return Err(error),
        Verdict::Strip => {
            changes.strip(stripped_name(&path));
            return Ok(());
        }
        Verdict::Forward => {}
    }
    let Some(mut value) = check_attribute(attribute, value, &path, changes)? else {
        return Ok(());
    };
    rules.strip_sub_attributes(&found, &mut value, changes);
    let index = match extensions.iter().position(|(s, _)| std::ptr::eq(*s, extension)) {
        Some(index) => index,
        None => {
            extensions.push((extension, Map::new()));
            extensions.len() - 1
        }
    };
    let Some((_, attributes)) = extensions.get_mut(index) else {
        return Ok(());
    };
    match (attributes.get_mut(attribute.name), value) {
        // Flat sub-attributes of one complex attribute merge (`manager.value` + `manager.$ref`).
        (Some(Value::Object(existing)), Value::Object(more)) if sub.is_some() => {
            for (key, value) in more {
                if existing.insert(key, value).is_some() {
                    return Err(invalid_syntax(format!("Attribute '{path}' appears more than once")));
                }
            }
        }
        (Some(_), _) => return Err(invalid_syntax(format!("Attribute '{path}' appears more than once"))),
        (None, value) => {
            attributes.insert(attribute.name.to_string(), value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
