//! RFC 7643 §6 and §7 JSON representations of resource types and schemas.

use serde_json::{json, Map, Value};

use super::{
    AttrType, Attribute, Mutability, Registry, Returned, Uniqueness, RESOURCE_TYPE_SCHEMA,
    SCHEMA_SCHEMA,
};

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

impl Attribute {
    /// The RFC 7643 §7 representation of this attribute definition.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.attr_type.as_str()));
        m.insert("multiValued".into(), json!(self.multi_valued));
        m.insert("description".into(), json!(self.description));
        m.insert("required".into(), json!(self.required));
        if self.attr_type != AttrType::Complex {
            m.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical_values.is_empty() {
            m.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        m.insert("mutability".into(), json!(self.mutability.as_str()));
        m.insert("returned".into(), json!(self.returned.as_str()));
        if self.attr_type != AttrType::Complex {
            m.insert("uniqueness".into(), json!(self.uniqueness.as_str()));
        }
        if self.attr_type == AttrType::Reference {
            m.insert("referenceTypes".into(), json!(self.reference_types));
        }
        if self.attr_type == AttrType::Complex {
            let subs: Vec<Value> = self.sub_attributes.iter().map(Attribute::to_json).collect();
            m.insert("subAttributes".into(), Value::Array(subs));
        }
        Value::Object(m)
    }
}

fn base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

impl Registry {
    /// RFC 7643 §7 representation of every schema.
    pub fn schemas_json(&self, base_url: &str) -> Vec<serde_json::Value> {
        self.schemas
            .iter()
            .map(|s| {
                let attrs: Vec<Value> = s.attributes.iter().map(Attribute::to_json).collect();
                json!({
                    "schemas": [SCHEMA_SCHEMA],
                    "id": s.id,
                    "name": s.name,
                    "description": s.description,
                    "attributes": attrs,
                    "meta": {
                        "resourceType": "Schema",
                        "location": format!("{}/Schemas/{}", base(base_url), s.id),
                    },
                })
            })
            .collect()
    }

    /// RFC 7643 §6 representation of every resource type.
    pub fn resource_types_json(&self, base_url: &str) -> Vec<serde_json::Value> {
        self.resource_types
            .iter()
            .map(|rt| {
                let exts: Vec<Value> = rt
                    .extensions
                    .iter()
                    .map(|e| json!({"schema": e.schema, "required": e.required}))
                    .collect();
                json!({
                    "schemas": [RESOURCE_TYPE_SCHEMA],
                    "id": rt.name,
                    "name": rt.name,
                    "endpoint": rt.endpoint,
                    "description": rt.description,
                    "schema": rt.schema,
                    "schemaExtensions": exts,
                    "meta": {
                        "resourceType": "ResourceType",
                        "location": format!("{}/ResourceTypes/{}", base(base_url), rt.name),
                    },
                })
            })
            .collect()
    }
}
