//! PATCH requests (RFC 7644 §3.5.2): parsing here, the engine in `apply.rs`.

mod apply;
mod ops;

use serde_json::Value;

use crate::error::{ScimError, ScimResult};
use crate::filter::get_ci;
use crate::path::{short, PatchPath};
use crate::schema::PATCH_OP_SCHEMA;

pub use apply::apply_patch;

/// Most operations accepted in one PATCH request. More is answered `400 invalidSyntax` (RFC 7644
/// defines no better `scimType` for an oversized PATCH; `tooMany` is about result sets).
pub const MAX_PATCH_OPERATIONS: usize = 1000;

/// The `op` of a PATCH operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    Add,
    Remove,
    Replace,
}

impl PatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOp::Add => "add",
            PatchOp::Remove => "remove",
            PatchOp::Replace => "replace",
        }
    }
}

/// One PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOp,
    pub path: Option<PatchPath>,
    /// The `value` member as sent (`Some(Value::Null)` when sent as null).
    pub value: Option<Value>,
}

/// Parse a PatchOp request body (see the crate docs for the leniency rules: case-insensitive
/// `op` and member names, empty `Operations` is a no-op, `schemas` may be absent).
pub fn parse_patch(body: &Value) -> ScimResult<Vec<PatchOperation>> {
    if !body.is_object() {
        return Err(ScimError::invalid_syntax(
            "the PATCH body must be a JSON object",
        ));
    }
    if let Some(schemas) = get_ci(body, "schemas") {
        let ok = match schemas {
            Value::Array(a) => a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
            }),
            Value::String(s) => s.eq_ignore_ascii_case(PATCH_OP_SCHEMA),
            _ => false,
        };
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must contain '{PATCH_OP_SCHEMA}'"
            )));
        }
    }
    let ops = match get_ci(body, "Operations") {
        Some(Value::Array(ops)) => ops,
        _ => return Err(ScimError::invalid_syntax("'Operations' must be an array")),
    };
    if ops.len() > MAX_PATCH_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "at most {MAX_PATCH_OPERATIONS} operations per PATCH request"
        )));
    }
    ops.iter()
        .enumerate()
        .map(|(i, o)| parse_operation(i, o))
        .collect()
}

fn parse_operation(i: usize, o: &Value) -> ScimResult<PatchOperation> {
    if !o.is_object() {
        return Err(ScimError::invalid_syntax(format!(
            "operation {i} must be an object"
        )));
    }
    let op = match get_ci(o, "op") {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("add") => PatchOp::Add,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("remove") => PatchOp::Remove,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("replace") => PatchOp::Replace,
        Some(Value::String(s)) => {
            return Err(ScimError::invalid_syntax(format!(
                "operation {i}: unknown op '{}'",
                short(s)
            )))
        }
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "operation {i}: 'op' must be a string"
            )))
        }
    };
    let path = match get_ci(o, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(PatchPath::parse(s.trim())?),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "operation {i}: 'path' must be a string"
            )))
        }
    };
    let value = get_ci(o, "value").cloned();
    match op {
        PatchOp::Add | PatchOp::Replace if value.is_none() => Err(ScimError::invalid_syntax(
            format!("operation {i}: '{}' requires a 'value'", op.as_str()),
        )),
        PatchOp::Remove if path.is_none() => Err(ScimError::no_target(format!(
            "operation {i}: 'remove' requires a 'path'"
        ))),
        _ => Ok(PatchOperation { op, path, value }),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
