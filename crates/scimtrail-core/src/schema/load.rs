//! Custom schemas and resource types, read from their RFC 7643 JSON representations (§6 and
//! §7, the same shape `/Schemas` and `/ResourceTypes` answer). A definition is checked as
//! strictly as a client's input is: a misspelt characteristic must stop the server at start,
//! not quietly change what it accepts.
//!
//! What a file may hold: one Schema, one ResourceType, an array of them, or a ListResponse of
//! them (what `GET /Schemas` of another server answers). A ResourceType named `User` or `Group`
//! does not add a type: it sets the extensions (and description) of the built-in one, which is
//! how a custom extension is attached to Users.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{
    AttrType, Attribute, Mutability, Registry, ResourceType, Returned, Schema, SchemaExtension,
    Uniqueness, GROUP_SCHEMA, RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA, USER_SCHEMA,
};

const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// Why a definition was refused: where (file, schema, attribute) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError(pub String);

impl std::fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DefinitionError {}

type Res<T> = Result<T, DefinitionError>;

fn fail<T>(at: &str, what: impl std::fmt::Display) -> Res<T> {
    Err(DefinitionError(format!("{at}: {what}")))
}

/// Endpoints the server answers itself, and names whose lowercase form is the prefix of an
/// event action of the server's own (`auth.failure`, `audit.list`, `resource.read`, …).
const RESERVED_ENDPOINTS: &[&str] = &[
    "bulk",
    "schemas",
    "resourcetypes",
    "serviceproviderconfig",
    ".search",
    "me",
];
const RESERVED_NAMES: &[&str] = &[
    "audit",
    "auditevent",
    "auth",
    "bulk",
    "checkpoint",
    "config",
    "log",
    "request",
    "resource",
    "resourcetype",
    "schema",
    "serviceproviderconfig",
    "token",
];

/// Names of RFC 7643 §2.1: ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA.
fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The definitions of one file, split into schemas and resource types.
fn documents<'a>(at: &str, v: &'a Value) -> Res<Vec<(&'a Map<String, Value>, bool)>> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) => match o.get("Resources") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(_) => return fail(at, "`Resources` must be an array"),
            None => vec![v],
        },
        _ => return fail(at, "expected a Schema, a ResourceType, or an array of them"),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(o) = item.as_object() else {
            return fail(at, "every definition must be a JSON object");
        };
        let declared = |urn: &str| {
            o.get("schemas")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(urn)))
        };
        let is_rt = if declared(RESOURCE_TYPE_SCHEMA) {
            true
        } else if declared(SCHEMA_SCHEMA) {
            false
        } else if o.contains_key("endpoint") {
            true
        } else if o.contains_key("attributes") {
            false
        } else {
            return fail(
                at,
                "a definition must be a Schema (with `attributes`) or a ResourceType (with \
                 `endpoint`)",
            );
        };
        out.push((o, is_rt));
    }
    Ok(out)
}

fn only_keys(at: &str, o: &Map<String, Value>, allowed: &[&str]) -> Res<()> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => fail(
            at,
            format!("unknown key `{k}` (known: {})", allowed.join(", ")),
        ),
        None => Ok(()),
    }
}

fn string<'a>(at: &str, o: &'a Map<String, Value>, key: &str) -> Res<Option<&'a str>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => fail(at, format!("`{key}` must be a string")),
    }
}

fn required_string<'a>(at: &str, o: &'a Map<String, Value>, key: &str) -> Res<&'a str> {
    match string(at, o, key)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => fail(at, format!("`{key}` is required")),
    }
}

fn boolean(at: &str, o: &Map<String, Value>, key: &str) -> Res<bool> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => fail(at, format!("`{key}` must be true or false")),
    }
}

fn strings(at: &str, o: &Map<String, Value>, key: &str) -> Res<Vec<String>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => fail(at, format!("`{key}` must be an array of strings")),
            })
            .collect(),
        Some(_) => fail(at, format!("`{key}` must be an array of strings")),
    }
}

/// One of `choices` (case-insensitive, as RFC 7643 spells them), or `default` when absent.
fn choice<T: Copy>(
    at: &str,
    o: &Map<String, Value>,
    key: &str,
    choices: &[(&str, T)],
    default: T,
) -> Res<T> {
    let Some(s) = string(at, o, key)? else {
        return Ok(default);
    };
    match choices.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        Some((_, t)) => Ok(*t),
        None => fail(
            at,
            format!(
                "`{key}` is `{s}`; it must be one of {}",
                choices
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

const ATTRIBUTE_KEYS: &[&str] = &[
    "name",
    "type",
    "multiValued",
    "description",
    "required",
    "caseExact",
    "mutability",
    "returned",
    "uniqueness",
    "canonicalValues",
    "referenceTypes",
    "subAttributes",
];

/// One attribute definition; `parent` is the complex attribute it is a sub-attribute of.
fn attribute(at: &str, v: &Value, parent: Option<&Attribute>) -> Res<Attribute> {
    let Some(o) = v.as_object() else {
        return fail(at, "an attribute must be a JSON object");
    };
    let name = required_string(at, o, "name")?;
    let at = format!("{at}.{name}");
    let at = at.as_str();
    only_keys(at, o, ATTRIBUTE_KEYS)?;
    if !(valid_name(name) || (parent.is_some() && name == "$ref")) {
        return fail(
            at,
            "an attribute name starts with a letter and holds only letters, digits, `-` and `_`",
        );
    }
    let attr_type = choice(
        at,
        o,
        "type",
        &[
            ("string", AttrType::String),
            ("boolean", AttrType::Boolean),
            ("decimal", AttrType::Decimal),
            ("integer", AttrType::Integer),
            ("dateTime", AttrType::DateTime),
            ("binary", AttrType::Binary),
            ("reference", AttrType::Reference),
            ("complex", AttrType::Complex),
        ],
        AttrType::String,
    )?;
    if string(at, o, "type")?.is_none() {
        return fail(at, "`type` is required");
    }
    let mut a = Attribute {
        name: name.to_string(),
        attr_type,
        multi_valued: boolean(at, o, "multiValued")?,
        description: string(at, o, "description")?
            .unwrap_or_default()
            .to_string(),
        required: boolean(at, o, "required")?,
        case_exact: boolean(at, o, "caseExact")?,
        mutability: choice(
            at,
            o,
            "mutability",
            &[
                ("readOnly", Mutability::ReadOnly),
                ("readWrite", Mutability::ReadWrite),
                ("immutable", Mutability::Immutable),
                ("writeOnly", Mutability::WriteOnly),
            ],
            Mutability::ReadWrite,
        )?,
        returned: choice(
            at,
            o,
            "returned",
            &[
                ("always", Returned::Always),
                ("never", Returned::Never),
                ("default", Returned::Default),
                ("request", Returned::Request),
            ],
            Returned::Default,
        )?,
        uniqueness: choice(
            at,
            o,
            "uniqueness",
            &[
                ("none", Uniqueness::None),
                ("server", Uniqueness::Server),
                ("global", Uniqueness::Global),
            ],
            Uniqueness::None,
        )?,
        canonical_values: strings(at, o, "canonicalValues")?,
        strict_canonical: true,
        reference_types: strings(at, o, "referenceTypes")?,
        sub_attributes: Vec::new(),
    };
    if !a.canonical_values.is_empty() && a.attr_type != AttrType::String {
        return fail(
            at,
            "`canonicalValues` are supported on string attributes only",
        );
    }
    if a.attr_type == AttrType::Reference && a.reference_types.is_empty() {
        a.reference_types.push("external".into());
    }
    if a.attr_type != AttrType::Reference && !a.reference_types.is_empty() {
        return fail(at, "`referenceTypes` belong to reference attributes only");
    }
    if a.is_secret() && a.returned == Returned::Always {
        return fail(
            at,
            "a writeOnly attribute is never returned, so not `returned: always`",
        );
    }
    if a.is_secret() && a.required {
        return fail(
            at,
            "a writeOnly or never-returned value is never stored, so it cannot be required: no \
             later PUT or PATCH could keep it",
        );
    }
    let mut folded = HashSet::new();
    for c in &a.canonical_values {
        let k = if a.case_exact {
            c.clone()
        } else {
            c.to_lowercase()
        };
        if !folded.insert(k) {
            return fail(at, format!("canonical value `{c}` is listed twice"));
        }
    }
    if a.uniqueness != Uniqueness::None {
        if parent.is_some() || a.multi_valued || a.attr_type == AttrType::Complex {
            return fail(
                at,
                "`uniqueness` is enforced on single-valued, non-complex, top-level attributes only",
            );
        }
        if a.is_secret() {
            return fail(
                at,
                "a writeOnly or never-returned value is never stored, so it cannot be unique",
            );
        }
    }
    match (a.attr_type, o.get("subAttributes")) {
        (AttrType::Complex, Some(Value::Array(subs))) if !subs.is_empty() => {
            if parent.is_some() {
                // RFC 7643 §2.3.8: a complex attribute has no complex sub-attributes.
                return fail(at, "a sub-attribute cannot be complex");
            }
            let mut seen = HashSet::new();
            for s in subs {
                let sub = attribute(at, s, Some(&a))?;
                if sub.attr_type == AttrType::Complex {
                    return fail(at, "a sub-attribute cannot be complex");
                }
                if a.multi_valued && sub.mutability == Mutability::Immutable {
                    // The elements of a multi-valued attribute have no identity to hold one
                    // element's value to; make the whole attribute immutable instead.
                    return fail(
                        at,
                        format!(
                            "sub-attribute `{}` of a multi-valued attribute cannot be immutable",
                            sub.name
                        ),
                    );
                }
                if !seen.insert(sub.name.to_ascii_lowercase()) {
                    return fail(at, format!("sub-attribute `{}` is defined twice", sub.name));
                }
                a.sub_attributes.push(sub);
            }
        }
        (AttrType::Complex, _) => return fail(at, "a complex attribute needs `subAttributes`"),
        (_, None | Some(Value::Null)) => {}
        (_, Some(_)) => return fail(at, "only a complex attribute has `subAttributes`"),
    }
    Ok(a)
}

fn schema(at: &str, o: &Map<String, Value>) -> Res<Schema> {
    only_keys(
        at,
        o,
        &["schemas", "id", "name", "description", "attributes", "meta"],
    )?;
    let id = required_string(at, o, "id")?;
    let at = format!("{at}: schema {id}");
    let at = at.as_str();
    if !id.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        || id.chars().any(|c| c.is_whitespace() || c == '"')
    {
        return fail(
            at,
            "a schema id is a URN (`urn:…`) without spaces or quotes",
        );
    }
    if id
        .to_ascii_lowercase()
        .starts_with("urn:ietf:params:scim:api:")
        || [
            SCHEMA_SCHEMA,
            RESOURCE_TYPE_SCHEMA,
            SERVICE_PROVIDER_CONFIG_SCHEMA,
        ]
        .iter()
        .any(|u| u.eq_ignore_ascii_case(id))
    {
        return fail(at, "this URN is one of SCIM's own messages or meta-schemas");
    }
    let Some(Value::Array(attrs)) = o.get("attributes") else {
        return fail(at, "`attributes` must be an array");
    };
    let mut seen = HashSet::new();
    let mut attributes = Vec::with_capacity(attrs.len());
    for v in attrs {
        let a = attribute(at, v, None)?;
        let lower = a.name.to_ascii_lowercase();
        if ["id", "externalid", "meta", "schemas"].contains(&lower.as_str()) {
            return fail(
                at,
                format!(
                    "`{}` is a common attribute of every resource (RFC 7643 §3.1)",
                    a.name
                ),
            );
        }
        if !seen.insert(lower) {
            return fail(at, format!("attribute `{}` is defined twice", a.name));
        }
        attributes.push(a);
    }
    Ok(Schema {
        id: id.to_string(),
        name: string(at, o, "name")?.unwrap_or_default().to_string(),
        description: string(at, o, "description")?
            .unwrap_or_default()
            .to_string(),
        attributes,
    })
}

fn resource_type(at: &str, o: &Map<String, Value>) -> Res<ResourceType> {
    only_keys(
        at,
        o,
        &[
            "schemas",
            "id",
            "name",
            "endpoint",
            "description",
            "schema",
            "schemaExtensions",
            "meta",
        ],
    )?;
    let name = required_string(at, o, "name")?;
    let at = format!("{at}: resource type {name}");
    let at = at.as_str();
    if !valid_name(name) {
        return fail(
            at,
            "a resource type name starts with a letter and holds only letters, digits, `-` and `_`",
        );
    }
    if string(at, o, "id")?.is_some_and(|id| id != name) {
        return fail(at, "`id` must equal `name`");
    }
    let endpoint = required_string(at, o, "endpoint")?;
    let bare = endpoint.strip_prefix('/').unwrap_or(endpoint);
    if !valid_name(bare) {
        return fail(
            at,
            "`endpoint` is `/` and a name of letters, digits, `-` and `_` (for example `/Devices`)",
        );
    }
    let mut extensions = Vec::new();
    match o.get("schemaExtensions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(exts)) => {
            for e in exts {
                let Some(e) = e.as_object() else {
                    return fail(at, "each of `schemaExtensions` is an object");
                };
                only_keys(at, e, &["schema", "required"])?;
                extensions.push(SchemaExtension {
                    schema: required_string(at, e, "schema")?.to_string(),
                    required: boolean(at, e, "required")?,
                });
            }
        }
        Some(_) => return fail(at, "`schemaExtensions` must be an array"),
    }
    Ok(ResourceType {
        name: name.to_string(),
        endpoint: format!("/{bare}"),
        description: string(at, o, "description")?
            .unwrap_or_default()
            .to_string(),
        schema: required_string(at, o, "schema")?.to_string(),
        extensions,
    })
}

impl Registry {
    /// This registry with the schemas and resource types of `files` (name, parsed JSON) added.
    /// Schemas come first whatever the order of the files, so a resource type may name a
    /// schema defined in a later file. Built-in schemas cannot be redefined.
    pub fn extend(self, files: &[(String, Value)]) -> Result<Registry, DefinitionError> {
        let mut schemas = self.schemas.clone();
        let mut types = self.resource_types.clone();
        let builtin_types: Vec<String> = types.iter().map(|t| t.name.clone()).collect();
        let mut parsed = Vec::new();
        for (file, v) in files {
            for (o, is_rt) in documents(file, v)? {
                parsed.push((file, o, is_rt));
            }
        }
        for (file, o, _) in parsed.iter().filter(|(_, _, rt)| !rt) {
            let s = schema(file, o)?;
            if schemas.iter().any(|x| x.id.eq_ignore_ascii_case(&s.id)) {
                return fail(file, format!("schema {} is defined twice", s.id));
            }
            schemas.push(s);
        }
        let known = |urn: &str| schemas.iter().find(|s| s.id.eq_ignore_ascii_case(urn));
        let mut overridden = HashSet::new();
        for (file, o, _) in parsed.iter().filter(|(_, _, rt)| *rt) {
            let mut rt = resource_type(file, o)?;
            let at = format!("{file}: resource type {}", rt.name);
            let Some(core) = known(&rt.schema) else {
                return fail(&at, format!("schema {} is not defined", rt.schema));
            };
            rt.schema = core.id.clone();
            let mut seen = HashSet::new();
            for e in &mut rt.extensions {
                let Some(s) = known(&e.schema) else {
                    return fail(&at, format!("extension schema {} is not defined", e.schema));
                };
                e.schema = s.id.clone();
                if e.schema == USER_SCHEMA || e.schema == GROUP_SCHEMA {
                    return fail(
                        &at,
                        format!("{} is a core schema, not an extension", e.schema),
                    );
                }
                if e.schema == rt.schema || !seen.insert(e.schema.clone()) {
                    return fail(&at, format!("schema {} is listed twice", e.schema));
                }
            }
            if let Some(b) = builtin_types
                .iter()
                .find(|b| b.eq_ignore_ascii_case(&rt.name))
            {
                // The built-in User or Group: only its extensions and description change, once.
                if !overridden.insert(b.clone()) {
                    return fail(&at, format!("the built-in {b} is set twice"));
                }
                let Some(t) = types.iter_mut().find(|t| &t.name == b) else {
                    continue;
                };
                if !t.endpoint.eq_ignore_ascii_case(&rt.endpoint) || t.schema != rt.schema {
                    return fail(
                        &at,
                        format!(
                            "the built-in {b} keeps its endpoint {} and schema {}; only its \
                             extensions and description can be set",
                            t.endpoint, t.schema
                        ),
                    );
                }
                t.extensions = rt.extensions;
                if !rt.description.is_empty() {
                    t.description = rt.description;
                }
                continue;
            }
            if rt.schema == USER_SCHEMA || rt.schema == GROUP_SCHEMA {
                return fail(
                    &at,
                    "the core User and Group schemas belong to the built-in User and Group types",
                );
            }
            let lname = rt.name.to_ascii_lowercase();
            let lend = rt.endpoint[1..].to_ascii_lowercase();
            if RESERVED_NAMES.contains(&lname.as_str())
                || RESERVED_ENDPOINTS.contains(&lname.as_str())
                || RESERVED_ENDPOINTS.contains(&lend.as_str())
            {
                return fail(&at, "this name or endpoint is the server's own");
            }
            let taken = |t: &ResourceType| {
                let (n, e) = (
                    t.name.to_ascii_lowercase(),
                    t.endpoint[1..].to_ascii_lowercase(),
                );
                [n.as_str(), e.as_str()].contains(&lname.as_str())
                    || [n.as_str(), e.as_str()].contains(&lend.as_str())
            };
            if types.iter().any(taken) {
                return fail(&at, "another resource type has this name or endpoint");
            }
            types.push(rt);
        }
        let mut reg = Registry::new(schemas, types);
        reg.max_values = self.max_values;
        reg.max_filter_terms = self.max_filter_terms;
        Ok(reg)
    }
}

#[cfg(test)]
mod tests;
