//! What the protocol layer asks of the layer above it: which attributes a request may send on to
//! the upstream, and what the upstream's own contract makes of a request the protocol accepts.
//! The SCIM code validates and normalises; the mapping (`crate::mapping::Policy`) answers through
//! [`AttributeRules`], so nothing under `scim` depends on the configuration or the mapping.

use serde_json::{Map, Value};

use super::normalisation::Changes;
use super::query::Query;
use super::schema::{AttrRef, ResourceSchema, Schema};
use crate::http::Method;
use crate::scim_error::ScimError;

/// What happens to one attribute on its way upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    Strip,
    Reject(ScimError),
}

/// Counter-safe name of a stripped attribute: its canonical path with `:` and `.` as `_`.
pub fn stripped_name(canonical: &str) -> String {
    let mut name = String::with_capacity(canonical.len());
    for c in canonical.chars() {
        name.push(if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' });
    }
    name
}

/// Name under which attributes of an open schema that the configuration does not list are
/// counted: client-chosen names never become counter names.
pub const UNLISTED_CUSTOM: &str = "custom_unlisted";

/// The rules of one resource type that the protocol code applies while it validates a request.
/// Called through `&dyn`: one copy of the protocol code, whatever implements the rules.
pub trait AttributeRules {
    /// The schemas the resource type's requests are validated against.
    fn schema(&self) -> &'static ResourceSchema;

    /// Nothing is ever stripped: every attribute the schema knows is forwarded.
    fn strips_nothing(&self) -> bool;

    /// The verdict for an attribute (or sub-attribute) a request would send upstream.
    fn verdict(&self, attr: &AttrRef) -> Verdict;

    /// Keeps only the forwarded sub-attributes of a complex value (or of each item of a
    /// multi-valued one) of `attr`.
    fn strip_sub_attributes(&self, attr: &AttrRef, value: &mut Value, changes: &mut Changes);

    /// Restricts a query to what the upstream stores. `false` when its filter can match nothing.
    fn restrict_query(&self, query: &mut Query, changes: &mut Changes) -> bool;

    /// The upstream's contract for a POST or PUT body in canonical form (core attributes in
    /// `core`, the `schemas` list in `declared`, extension attributes in `extensions`).
    fn resource_contract(
        &self,
        method: Method,
        core: &mut Map<String, Value>,
        declared: &mut Vec<&'static str>,
        extensions: &[(&'static Schema, Map<String, Value>)],
    ) -> Result<(), ScimError>;

    /// The upstream's contract for the operations of a PATCH, in canonical PatchOp form.
    fn patch_contract(&self, operations: Vec<Value>) -> Result<Vec<Value>, ScimError>;
}
