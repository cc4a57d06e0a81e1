//! The schema registry: RFC 7643 attribute characteristics for the built-in resource types, with
//! precomputed lowercase indexes so every lookup made while parsing, validating, filtering and
//! projecting is a hash lookup plus, at most, a short scan of sub-attributes.

mod builtin;
mod json;
mod load;

pub use load::DefinitionError;

use std::collections::HashMap;

use crate::path::AttrPath;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

/// RFC 7643 §2.3 attribute data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

/// RFC 7643 §7 "mutability".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// RFC 7643 §7 "returned".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

/// RFC 7643 §7 "uniqueness".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// An attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub attr_type: AttrType,
    pub multi_valued: bool,
    pub description: String,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: Vec<String>,
    /// Refuse a value outside `canonical_values` (`invalidValue`). RFC 7643 §7 calls them
    /// "suggested" values a server "MAY" hold to: the built-in definitions keep them as
    /// suggestions, since IdPs send types of their own (`"mobile"`, `"other"`, …), while the
    /// definitions an operator loads are enforced, matched as `caseExact` says and stored in
    /// their canonical spelling.
    pub strict_canonical: bool,
    pub reference_types: Vec<String>,
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    /// The sub-attribute with this name (case-insensitive).
    pub fn sub_attribute(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
    /// Whether the attribute's value must never be stored or returned (writeOnly / returned:never).
    pub fn is_secret(&self) -> bool {
        self.mutability == Mutability::WriteOnly || self.returned == Returned::Never
    }
}

/// A schema (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub id: String,
    pub name: String,
    pub description: String,
    pub attributes: Vec<Attribute>,
}

/// A schema extension of a resource type (RFC 7643 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaExtension {
    pub schema: String,
    pub required: bool,
}

/// A resource type (RFC 7643 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub name: String,
    pub endpoint: String,
    pub description: String,
    pub schema: String,
    pub extensions: Vec<SchemaExtension>,
}

impl ResourceType {
    /// Whether this type has Group `members` (RFC 7643 §4.2): the built-in Group, the one
    /// type whose core schema is the Group schema.
    pub fn has_members(&self) -> bool {
        self.schema == GROUP_SCHEMA
    }

    /// Whether this type has the derived, read-only `groups` of RFC 7643 §4.1.2 (the User).
    pub fn has_groups(&self) -> bool {
        self.schema == USER_SCHEMA
    }

    /// The event action `verb` on a resource of this type: `user.create`, `device.delete`.
    pub fn action(&self, verb: &str) -> String {
        format!("{}.{verb}", self.name.to_ascii_lowercase())
    }

    /// The extension URN of this resource type equal (case-insensitively) to `urn`, canonically cased.
    pub fn extension(&self, urn: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|e| e.schema.eq_ignore_ascii_case(urn))
            .map(|e| e.schema.as_str())
    }
}

/// What an attribute path resolved to.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The schema URN the attribute lives in (the core schema for common attributes).
    pub schema: &'a str,
    /// True when the attribute lives in an extension (its value is under the extension URN key).
    pub in_extension: bool,
    /// The top-level attribute.
    pub attr: &'a Attribute,
    /// The sub-attribute, when the path names one.
    pub sub: Option<&'a Attribute>,
}

/// All schemas and resource types known to the server, indexed for case-insensitive lookups.
#[derive(Debug, Clone)]
pub struct Registry {
    schemas: Vec<Schema>,
    resource_types: Vec<ResourceType>,
    common: Vec<Attribute>,
    schema_index: HashMap<String, usize>,
    rt_index: HashMap<String, usize>,
    /// Per schema (same order as `schemas`): lowercase attribute name → index.
    attr_index: Vec<HashMap<String, usize>>,
    /// The most values a multi-valued attribute other than Group `members` may hold.
    max_values: usize,
    max_filter_terms: usize,
}

/// Default of [`Registry::max_values`]: far above what any IdP sends (a user has a handful of
/// emails), far below what makes a request expensive.
pub const DEFAULT_MAX_VALUES: usize = 1000;

impl Registry {
    /// User, Group and the EnterpriseUser extension of RFC 7643.
    pub fn builtin() -> Registry {
        Registry::new(
            vec![
                builtin::user_schema(),
                builtin::group_schema(),
                builtin::enterprise_user_schema(),
            ],
            builtin::resource_types(),
        )
    }

    /// A registry over the given schemas and resource types (the common attributes id, externalId
    /// and meta are always added). Resource types should only reference schemas given here.
    pub fn new(schemas: Vec<Schema>, resource_types: Vec<ResourceType>) -> Registry {
        let schema_index = schemas
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.to_ascii_lowercase(), i))
            .collect();
        let attr_index = schemas
            .iter()
            .map(|s| {
                s.attributes
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (a.name.to_ascii_lowercase(), i))
                    .collect()
            })
            .collect();
        let mut rt_index = HashMap::new();
        for (i, rt) in resource_types.iter().enumerate() {
            let ep = rt.endpoint.trim_start_matches('/').to_ascii_lowercase();
            rt_index.insert(format!("/{ep}"), i);
            rt_index.insert(ep, i);
            rt_index.insert(rt.name.to_ascii_lowercase(), i);
        }
        Registry {
            schemas,
            resource_types,
            common: builtin::common_attributes(),
            schema_index,
            rt_index,
            attr_index,
            max_values: DEFAULT_MAX_VALUES,
            max_filter_terms: crate::filter::DEFAULT_MAX_TERMS,
        }
    }

    /// Refuse (`invalidValue`) a multi-valued attribute with more than `n` values. Group
    /// `members` are exempt: they are bounded by the body size and de-duplicated in a set.
    pub fn with_max_values(mut self, n: usize) -> Registry {
        self.max_values = n.max(1);
        self
    }

    /// The most values a multi-valued attribute other than Group `members` may hold.
    pub fn max_values(&self) -> usize {
        self.max_values
    }

    /// Refuse (`invalidFilter`) filters with more than `n` comparisons.
    pub fn with_max_filter_terms(mut self, n: usize) -> Registry {
        self.max_filter_terms = n.max(1);
        self
    }

    /// The most comparisons one filter may hold.
    pub fn max_filter_terms(&self) -> usize {
        self.max_filter_terms
    }

    /// By name ("User") or endpoint ("Users" or "/Users"), case-insensitive.
    pub fn resource_type(&self, name_or_endpoint: &str) -> Option<&ResourceType> {
        let i = self.rt_index.get(&name_or_endpoint.to_ascii_lowercase())?;
        self.resource_types.get(*i)
    }

    pub fn resource_types(&self) -> &[ResourceType] {
        &self.resource_types
    }

    pub fn schemas(&self) -> &[Schema] {
        &self.schemas
    }

    /// The schema with this URN (case-insensitive).
    pub fn schema(&self, urn: &str) -> Option<&Schema> {
        let i = self.schema_index.get(&urn.to_ascii_lowercase())?;
        self.schemas.get(*i)
    }

    /// The common attributes (id, externalId, meta) of every resource type.
    pub fn common_attributes(&self) -> &[Attribute] {
        &self.common
    }

    /// A top-level attribute of the schema `urn` (case-insensitive).
    pub fn schema_attribute(&self, urn: &str, name: &str) -> Option<&Attribute> {
        let si = *self.schema_index.get(&urn.to_ascii_lowercase())?;
        let ai = *self.attr_index.get(si)?.get(&name.to_ascii_lowercase())?;
        self.schemas.get(si)?.attributes.get(ai)
    }

    fn common_attribute(&self, name: &str) -> Option<&Attribute> {
        self.common
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Resolve a path to its schema, attribute and sub-attribute. Without a URN, common attributes
    /// come first, then the core schema, then the extensions in order.
    pub fn resolve_parts(&self, rt: &ResourceType, path: &AttrPath) -> Option<Resolved<'_>> {
        let core = self.schema(&rt.schema)?;
        let (schema, in_extension, attr) = match &path.urn {
            Some(urn) if urn.eq_ignore_ascii_case(&rt.schema) => {
                let a = self
                    .common_attribute(&path.name)
                    .or_else(|| self.schema_attribute(&core.id, &path.name))?;
                (core.id.as_str(), false, a)
            }
            Some(urn) => {
                let ext = self.schema(rt.extension(urn)?)?;
                (
                    ext.id.as_str(),
                    true,
                    self.schema_attribute(&ext.id, &path.name)?,
                )
            }
            None => {
                if let Some(a) = self
                    .common_attribute(&path.name)
                    .or_else(|| self.schema_attribute(&core.id, &path.name))
                {
                    (core.id.as_str(), false, a)
                } else {
                    rt.extensions.iter().find_map(|e| {
                        let s = self.schema(&e.schema)?;
                        Some((
                            s.id.as_str(),
                            true,
                            self.schema_attribute(&s.id, &path.name)?,
                        ))
                    })?
                }
            }
        };
        let sub = match &path.sub {
            Some(sub) => Some(attr.sub_attribute(sub)?),
            None => None,
        };
        Some(Resolved {
            schema,
            in_extension,
            attr,
            sub,
        })
    }

    /// Find the attribute definition a path points to (core or extension, case-insensitive; the
    /// sub-attribute when `path.sub` is set), with the URN of the schema it lives in.
    pub fn resolve(&self, rt: &ResourceType, path: &AttrPath) -> Option<(&str, &Attribute)> {
        let r = self.resolve_parts(rt, path)?;
        Some((r.schema, r.sub.unwrap_or(r.attr)))
    }

    /// Lowercased names of attributes (any depth, any schema of rt) that are writeOnly or
    /// returned:never — used for redaction.
    pub fn secret_attribute_names(&self, rt: &ResourceType) -> Vec<String> {
        fn walk(attrs: &[Attribute], out: &mut Vec<String>) {
            for a in attrs {
                let n = a.name.to_ascii_lowercase();
                if a.is_secret() && !out.contains(&n) {
                    out.push(n);
                }
                walk(&a.sub_attributes, out);
            }
        }
        let mut out = Vec::new();
        let urns = std::iter::once(rt.schema.as_str())
            .chain(rt.extensions.iter().map(|e| e.schema.as_str()));
        for urn in urns {
            if let Some(s) = self.schema(urn) {
                walk(&s.attributes, &mut out);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
