//! The built-in schemas of RFC 7643 §8.7.1 (User, Group, EnterpriseUser) and the common attributes
//! (§3.1: id, externalId, meta), written with a small builder so the definitions stay readable.

use super::{
    AttrType, Attribute, Mutability, ResourceType, Returned, Schema, SchemaExtension, Uniqueness,
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA,
};

mod user;

pub(super) use user::user_schema;

use AttrType as T;

/// A single-valued, optional, case-insensitive, readWrite, returned-by-default attribute.
fn a(name: &str, attr_type: AttrType, description: &str) -> Attribute {
    Attribute {
        name: name.to_string(),
        attr_type,
        multi_valued: false,
        description: description.to_string(),
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: Vec::new(),
        strict_canonical: false,
        reference_types: Vec::new(),
        sub_attributes: Vec::new(),
    }
}

impl Attribute {
    fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
    fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    fn unique(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }
    fn canon(mut self, values: &[&str]) -> Self {
        self.canonical_values = values.iter().map(|s| s.to_string()).collect();
        self
    }
    fn refs(mut self, types: &[&str]) -> Self {
        self.reference_types = types.iter().map(|s| s.to_string()).collect();
        self
    }
    fn subs(mut self, subs: Vec<Attribute>) -> Self {
        self.sub_attributes = subs;
        self
    }
    /// Apply a mutability to this attribute and all its sub-attributes.
    fn all_mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        for s in &mut self.sub_attributes {
            s.mutability = m;
        }
        self
    }
}

/// The usual multi-valued complex attribute: value, display, type (with canonical values), primary.
fn multi_complex(name: &str, desc: &str, value_type: AttrType, types: &[&str]) -> Attribute {
    let mut value = a("value", value_type, "The attribute's significant value.");
    if value_type == T::Reference {
        value = value.refs(&["external"]);
    }
    a(name, T::Complex, desc).multi().subs(vec![
        value,
        a(
            "display",
            T::String,
            "A human-readable name, primarily used for display purposes.",
        ),
        a(
            "type",
            T::String,
            "A label indicating the attribute's function.",
        )
        .canon(types),
        a(
            "primary",
            T::Boolean,
            "Indicates the 'primary' or preferred attribute value.",
        ),
    ])
}

/// `schemas`, `id`, `externalId`, `meta` (RFC 7643 §3), shared by every resource type.
pub(super) fn common_attributes() -> Vec<Attribute> {
    use Mutability::ReadOnly;
    vec![
        a("schemas", T::String, "The schema URIs of the resource.")
            .multi()
            .mutability(ReadOnly)
            .returned(Returned::Always),
        a(
            "id",
            T::String,
            "Unique identifier for the resource, assigned by the service provider.",
        )
        .exact()
        .mutability(ReadOnly)
        .returned(Returned::Always)
        .unique(Uniqueness::Server),
        a(
            "externalId",
            T::String,
            "Identifier for the resource as defined by the provisioning client.",
        )
        .exact(),
        a("meta", T::Complex, "Resource metadata.")
            .subs(vec![
                a("resourceType", T::String, "The name of the resource type.").exact(),
                a(
                    "created",
                    T::DateTime,
                    "When the resource was added to the service provider.",
                ),
                a(
                    "lastModified",
                    T::DateTime,
                    "When the resource was last updated.",
                ),
                a("location", T::Reference, "The URI of the resource.")
                    .exact()
                    .refs(&["uri"]),
                a("version", T::String, "The version (ETag) of the resource.").exact(),
            ])
            .all_mutability(ReadOnly),
    ]
}

pub(super) fn group_schema() -> Schema {
    use Mutability::Immutable;
    let attributes = vec![
        a(
            "displayName",
            T::String,
            "A human-readable name for the Group.",
        )
        .required(),
        a("members", T::Complex, "A list of members of the Group.")
            .multi()
            .subs(vec![
                a(
                    "value",
                    T::String,
                    "Identifier of the member of this Group.",
                )
                .required()
                .mutability(Immutable),
                a("display", T::String, "A human-readable name of the member."),
                a("$ref", T::Reference, "The URI of the member resource.")
                    .refs(&["User", "Group"])
                    .mutability(Immutable),
                a("type", T::String, "The type of the member.")
                    .canon(&["User", "Group"])
                    .mutability(Immutable),
            ]),
    ];
    Schema {
        id: GROUP_SCHEMA.to_string(),
        name: "Group".to_string(),
        description: "Group".to_string(),
        attributes,
    }
}

pub(super) fn enterprise_user_schema() -> Schema {
    let s = |n: &str, d: &str| a(n, T::String, d);
    let attributes = vec![
        s(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person.",
        ),
        s("costCenter", "Identifies the name of a cost center."),
        s("organization", "Identifies the name of an organization."),
        s("division", "Identifies the name of a division."),
        s("department", "Identifies the name of a department."),
        a("manager", T::Complex, "The User's manager.").subs(vec![
            s(
                "value",
                "The id of the SCIM resource representing the User's manager.",
            ),
            a(
                "$ref",
                T::Reference,
                "The URI of the manager's User resource.",
            )
            .refs(&["User"]),
            s("displayName", "The displayName of the User's manager.")
                .mutability(Mutability::ReadOnly),
        ]),
    ];
    Schema {
        id: ENTERPRISE_USER_SCHEMA.to_string(),
        name: "EnterpriseUser".to_string(),
        description: "Enterprise User".to_string(),
        attributes,
    }
}

pub(super) fn resource_types() -> Vec<ResourceType> {
    vec![
        ResourceType {
            name: "User".to_string(),
            endpoint: "/Users".to_string(),
            description: "User Account".to_string(),
            schema: USER_SCHEMA.to_string(),
            extensions: vec![SchemaExtension {
                schema: ENTERPRISE_USER_SCHEMA.to_string(),
                required: false,
            }],
        },
        ResourceType {
            name: "Group".to_string(),
            endpoint: "/Groups".to_string(),
            description: "Group".to_string(),
            schema: GROUP_SCHEMA.to_string(),
            extensions: Vec::new(),
        },
    ]
}
