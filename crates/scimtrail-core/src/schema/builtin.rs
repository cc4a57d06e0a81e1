//! The built-in schemas of RFC 7643 §8.7.1 (User, Group, EnterpriseUser) and the common attributes
//! (§3.1: id, externalId, meta), written with a small builder so the definitions stay readable.

use super::{
    AttrType, Attribute, Mutability, ResourceType, Returned, Schema, SchemaExtension, Uniqueness,
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA,
};

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

pub(super) fn user_schema() -> Schema {
    let s = |n: &str, d: &str| a(n, T::String, d);
    let attributes = vec![
        s(
            "userName",
            "Unique identifier for the User, used to authenticate.",
        )
        .required()
        .unique(Uniqueness::Server),
        a(
            "name",
            T::Complex,
            "The components of the user's real name.",
        )
        .subs(vec![
            s("formatted", "The full name, formatted for display."),
            s("familyName", "The family name of the User."),
            s("givenName", "The given name of the User."),
            s("middleName", "The middle name(s) of the User."),
            s("honorificPrefix", "The honorific prefix(es) of the User."),
            s("honorificSuffix", "The honorific suffix(es) of the User."),
        ]),
        s(
            "displayName",
            "The name of the User, suitable for display to end-users.",
        ),
        s("nickName", "The casual way to address the user."),
        a(
            "profileUrl",
            T::Reference,
            "A fully qualified URL pointing to the User's profile.",
        )
        .refs(&["external"]),
        s("title", "The user's title, such as \"Vice President\"."),
        s(
            "userType",
            "Identifies the relationship between the organization and the user.",
        ),
        s(
            "preferredLanguage",
            "The User's preferred written or spoken language.",
        ),
        s("locale", "The User's default location for localization."),
        s(
            "timezone",
            "The User's time zone in IANA Time Zone database format.",
        ),
        a("active", T::Boolean, "The User's administrative status."),
        s("password", "The User's cleartext password; never returned.")
            .mutability(Mutability::WriteOnly)
            .returned(Returned::Never),
        multi_complex(
            "emails",
            "Email addresses for the user.",
            T::String,
            &["work", "home", "other"],
        ),
        multi_complex(
            "phoneNumbers",
            "Phone numbers for the User.",
            T::String,
            &["work", "home", "mobile", "fax", "pager", "other"],
        ),
        multi_complex(
            "ims",
            "Instant messaging addresses for the User.",
            T::String,
            &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
        ),
        multi_complex(
            "photos",
            "URLs of photos of the User.",
            T::Reference,
            &["photo", "thumbnail"],
        ),
        a(
            "addresses",
            T::Complex,
            "A physical mailing address for this User.",
        )
        .multi()
        .subs(vec![
            s(
                "formatted",
                "The full mailing address, formatted for display.",
            ),
            s("streetAddress", "The full street address component."),
            s("locality", "The city or locality component."),
            s("region", "The state or region component."),
            s("postalCode", "The zip code or postal code component."),
            s("country", "The country name component."),
            s("type", "A label indicating the attribute's function.")
                .canon(&["work", "home", "other"]),
            a("primary", T::Boolean, "Indicates the primary address."),
        ]),
        a(
            "groups",
            T::Complex,
            "A list of groups to which the user belongs.",
        )
        .multi()
        .subs(vec![
            s("value", "The identifier of the User's group."),
            a(
                "$ref",
                T::Reference,
                "The URI of the corresponding Group resource.",
            )
            .refs(&["User", "Group"]),
            s("display", "A human-readable name."),
            s("type", "How the membership was derived.").canon(&["direct", "indirect"]),
        ])
        .all_mutability(Mutability::ReadOnly),
        multi_complex(
            "entitlements",
            "A list of entitlements for the User.",
            T::String,
            &[],
        ),
        multi_complex("roles", "A list of roles for the User.", T::String, &[]),
        multi_complex(
            "x509Certificates",
            "A list of certificates issued to the User.",
            T::Binary,
            &[],
        ),
    ];
    Schema {
        id: USER_SCHEMA.to_string(),
        name: "User".to_string(),
        description: "User Account".to_string(),
        attributes,
    }
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
