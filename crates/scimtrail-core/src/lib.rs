//! The pure SCIM 2.0 core of scimtrail (RFC 7643 / RFC 7644): schemas, attribute paths, filters,
//! resource validation, PATCH and projection — no I/O, no async, no storage.
//!
//! # Main design choice: one canonical stored form, everything else is lenient input
//!
//! Real SCIM clients (Entra ID, Okta, …; see `SCIM-CLIENTS.md`) send capitalised `op`s, booleans as
//! strings, bare strings for complex attributes, unknown schema URNs and read-only attributes. This
//! crate accepts all of that at exactly one place, [`normalize`], which turns any input into a
//! single **canonical stored form** (schema-cased names, core attributes top-level, extensions under
//! their URN, no read-only or secret attributes, coerced types). Everything else works on that form:
//!
//! * [`apply_patch`] edits a draft copy of the stored form and then runs the *same* [`normalize`]
//!   on the result, so a PATCH can never produce a resource a PUT would have rejected, and it is
//!   atomic by construction (the caller's value is never touched).
//! * Secrets (`password`, any `writeOnly` / `returned: never` attribute) are dropped during
//!   normalization and only their *paths* are reported ([`Normalized::secrets`]); values never
//!   reach storage, and error details name attributes, never values.
//! * [`Filter::matches`] and [`project`] read full representations and use the [`Registry`] for
//!   types, `caseExact` and `returned`; unknown attributes never match and never panic.
//!
//! Every parser bounds its input (filters: 8192 bytes, nesting 64; PATCH: 1000 operations) and
//! answers a [`ScimError`] with the RFC 7644 `scimType` instead of panicking.

pub mod bulk;
pub mod error;
pub mod filter;
pub mod json;
pub mod patch;
pub mod path;
pub mod project;
pub mod resource;
pub mod schema;
pub mod username;

pub use error::{ScimError, ScimResult, ScimType};
pub use filter::{sort_key, CompValue, CompareOp, Filter, SortKey};
pub use json::parse_strict;
pub use patch::{apply_patch, parse_patch, PatchOp, PatchOperation};
pub use path::{AttrPath, PatchPath};
pub use project::{parse_attr_list, project, project_write};
pub use resource::{
    has_unique, keep_immutable, normalize, unique_values, Normalized, Secret, UniqueValue,
};
pub use schema::{
    AttrType, Attribute, DefinitionError, Mutability, Registry, ResourceType, Returned, Schema,
    Uniqueness,
};
