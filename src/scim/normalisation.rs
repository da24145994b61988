//! The rewrites the gateway applies to make a request canonical RFC 7643/7644, each counted by kind
//! (`scim_edge.normalised.<kind>`) so an operator sees what Entra really sends.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Normalisation {
    /// PatchOp `op` not in lower case (`"Replace"`): RFC 7644 §3.5.2 spells them `add`, `remove`,
    /// `replace`.
    OpCase,
    /// A boolean attribute sent as a string (`"False"`).
    StringBoolean,
    /// Entra's member removal, `remove` on `members` with a `value` list, turned into one
    /// `remove` per member with a value filter (RFC 7644 §3.5.2.2).
    MemberRemoval,
    /// A pathless `add`/`replace` whose value has dotted (`name.givenName`) or URN-qualified keys,
    /// turned into operations with paths.
    PathlessValueSplit,
    /// Extension attributes sent flat (`urn:...:User:employeeNumber` as a top-level key), nested
    /// under their extension.
    FlatExtension,
    /// An extension schema in use but missing from `schemas`, added.
    SchemaAdded,
    /// A schema URN that is not SCIM's (Entra's ADSCIM Group URN) dropped from `schemas`, or a
    /// `schemas` list inside an extension object dropped.
    ForeignSchemaDropped,
    /// `meta` sent on a create or replace (read-only, RFC 7643 §3.1), dropped.
    MetaDropped,
    /// Another read-only attribute (`id`, `groups`, `manager.displayName`...) in a body, dropped
    /// as RFC 7644 §3.3 and §3.5.1 ask.
    ReadOnlyDropped,
    /// A `null` value (including `"$ref": null`), dropped: null means unassigned (RFC 7643 §2.5).
    NullDropped,
    /// `replace` with a `null` value, sent as the `remove` it means.
    NullReplaceToRemove,
    /// Entra's enterprise `manager` as a bare id (`"manager": "<id>"`) or a one-item list
    /// (`[{"$ref": null, "value": "<id>"}]`), turned into RFC 7643 §4.3's `{"value": "<id>"}`.
    ManagerShape,
    /// An attribute name in another case than the schema's (RFC 7643 §2.1), canonicalised.
    AttributeCase,
    /// The query string re-encoded canonically (`+` for spaces, case of names and keywords).
    QueryReencoded,
}

impl Normalisation {
    pub fn as_str(self) -> &'static str {
        match self {
            Normalisation::OpCase => "op_case",
            Normalisation::StringBoolean => "string_boolean",
            Normalisation::MemberRemoval => "member_removal",
            Normalisation::PathlessValueSplit => "pathless_value_split",
            Normalisation::FlatExtension => "flat_extension",
            Normalisation::SchemaAdded => "schema_added",
            Normalisation::ForeignSchemaDropped => "foreign_schema_dropped",
            Normalisation::MetaDropped => "meta_dropped",
            Normalisation::ReadOnlyDropped => "read_only_dropped",
            Normalisation::NullDropped => "null_dropped",
            Normalisation::NullReplaceToRemove => "null_replace_to_remove",
            Normalisation::ManagerShape => "manager_shape",
            Normalisation::AttributeCase => "attribute_case",
            Normalisation::QueryReencoded => "query_reencoded",
        }
    }
}

/// The normalisations applied to one request, each kind once, and the attributes the mapping
/// stripped from it (counter-safe names, each once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    kinds: Vec<Normalisation>,
    stripped: Vec<String>,
    /// Stripped attributes are not recorded (relayed answers: nothing counts them).
    untracked: bool,
}

impl Changes {
    pub fn note(&mut self, kind: Normalisation) {
        if !self.kinds.contains(&kind) {
            self.kinds.push(kind);
        }
    }

    pub fn kinds(&self) -> &[Normalisation] {
        &self.kinds
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Changes whose stripped attributes nobody reads: their names are not even built.
    pub fn untracked() -> Changes {
        Changes { untracked: true, ..Changes::default() }
    }

    pub fn strip(&mut self, name: String) {
        if !self.untracked && !self.stripped.contains(&name) {
            self.stripped.push(name);
        }
    }

    /// [`Changes::strip`] with the name built only when it is recorded.
    pub fn strip_with(&mut self, name: impl FnOnce() -> String) {
        if !self.untracked {
            self.strip(name());
        }
    }

    pub fn stripped(&self) -> &[String] {
        &self.stripped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn stripped_attributes_are_recorded_once_each() {
        let mut changes = Changes::default();
        changes.strip("emails".to_string());
        changes.strip_with(|| "emails".to_string());
        changes.strip_with(|| "name_givenName".to_string());
        assert_eq!(changes.stripped(), ["emails", "name_givenName"]);
    }

    #[test]
    fn untracked_changes_record_no_stripped_attribute_and_build_no_name() {
        let mut changes = Changes::untracked();
        changes.strip("emails".to_string());
        changes.strip_with(|| unreachable!("the name of an untracked strip is never built"));
        assert!(changes.stripped().is_empty());
        changes.note(Normalisation::QueryReencoded);
        assert_eq!(changes.kinds(), [Normalisation::QueryReencoded], "normalisations are still noted");
    }
}
