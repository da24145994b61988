//! Fixtures the unit tests of the SCIM protocol layer share, built from the layer above it: those
//! tests need attribute rules, and the rules are the mapping's, which `src/scim/` never imports.

use crate::mapping::Policy;
use crate::route::ResourceType;

/// The rules of the `rfc` profile without removals: RFC 7643's schemas as they are, validation
/// and normalisation only.
pub fn rfc_rules(resource_type: ResourceType) -> Policy {
    Policy::rfc(resource_type)
}
