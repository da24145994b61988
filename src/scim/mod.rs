//! SCIM protocol logic (RFC 7643, RFC 7644): schemas, filters and queries, resource and PatchOp
//! validation, and the normalisation of what Microsoft Entra ID really sends.

pub mod schema;

pub mod filter;
pub mod normalisation;
pub mod patch;
pub mod query;
pub mod resource;
pub mod rules;
pub mod search;
pub mod value;
