//! A `/Bulk` request (RFC 7644 §3.7): its parse, the `bulkId` references between its
//! operations, and the order that runs every operation after the ones it refers to.
//!
//! Parsing is lenient the way PATCH is: member names and methods are case-insensitive and
//! `schemas` may be absent. A fault in one operation is that operation's error, reported in its
//! place of the response; only a fault of the request as a whole refuses it.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::filter::get_ci;
use crate::{ScimError, ScimResult, ScimType};

pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// The prefix of a value that refers to the resource another operation creates.
pub const BULK_ID_PREFIX: &str = "bulkId:";

/// The longest `bulkId` accepted: it is echoed in the response and the audit log.
pub const MAX_BULK_ID_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkMethod {
    Post,
    Put,
    Patch,
    Delete,
}

impl BulkMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkMethod::Post => "POST",
            BulkMethod::Put => "PUT",
            BulkMethod::Patch => "PATCH",
            BulkMethod::Delete => "DELETE",
        }
    }
}

/// One operation as sent. When it cannot run, `error` says why, and the other fields keep
/// what could be read of it for the response and its event.
#[derive(Debug, Clone)]
pub struct BulkOperation {
    /// The method as it goes back in the response: canonical when known, else as sent (cut).
    pub method_text: String,
    pub method: Option<BulkMethod>,
    pub bulk_id: Option<String>,
    /// `version`: the ETag the resource must have (`If-Match`).
    pub version: Option<String>,
    /// The endpoint (`Users`) of the path.
    pub endpoint: String,
    /// The id the path names, or `bulkId:…` of another operation.
    pub id: Option<String>,
    pub data: Option<Value>,
    pub error: Option<ScimError>,
}

impl BulkOperation {
    /// The path as sent, rebuilt from its parts.
    pub fn path(&self) -> String {
        match &self.id {
            Some(id) => format!("/{}/{id}", self.endpoint),
            None => format!("/{}", self.endpoint),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BulkRequest {
    /// Stop after this many operations have failed.
    pub fail_on_errors: Option<usize>,
    pub operations: Vec<BulkOperation>,
}

/// Parse a BulkRequest. `max_operations` is `maxOperations`: beyond it the request is refused
/// whole, 413 `tooMany`, and nothing runs.
pub fn parse_bulk(body: &Value, max_operations: usize) -> ScimResult<BulkRequest> {
    if !body.is_object() {
        return Err(ScimError::invalid_syntax(
            "the Bulk body must be a JSON object",
        ));
    }
    if let Some(schemas) = get_ci(body, "schemas") {
        let names = |s: &Value| {
            s.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST_SCHEMA))
        };
        let ok = match schemas {
            Value::Array(a) => a.iter().any(names),
            s => names(s),
        };
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must contain '{BULK_REQUEST_SCHEMA}'"
            )));
        }
    }
    let fail_on_errors = match get_ci(body, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => {
                return Err(ScimError::invalid_value(
                    "'failOnErrors' must be an integer of at least 1",
                ))
            }
        },
    };
    let ops = match get_ci(body, "Operations") {
        Some(Value::Array(ops)) => ops,
        _ => return Err(ScimError::invalid_syntax("'Operations' must be an array")),
    };
    if ops.len() > max_operations {
        return Err(ScimError::new(
            413,
            Some(ScimType::TooMany),
            format!(
                "the Bulk request holds {} operations; maxOperations is {max_operations}",
                ops.len()
            ),
        ));
    }
    let mut operations: Vec<BulkOperation> = ops.iter().map(parse_operation).collect();
    // A bulkId names one resource: a second POST with the same one cannot be referred to.
    let mut declared: HashMap<String, usize> = HashMap::new();
    for (i, op) in operations.iter_mut().enumerate() {
        if op.error.is_some() || op.method != Some(BulkMethod::Post) {
            continue;
        }
        let Some(b) = op.bulk_id.clone() else {
            continue;
        };
        if let Some(first) = declared.get(&b) {
            op.error = Some(ScimError::invalid_value(format!(
                "bulkId '{b}' is already used by operation {first}"
            )));
        } else {
            declared.insert(b, i);
        }
    }
    Ok(BulkRequest {
        fail_on_errors,
        operations,
    })
}

fn short(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn parse_operation(o: &Value) -> BulkOperation {
    let mut op = BulkOperation {
        method_text: String::new(),
        method: None,
        bulk_id: None,
        version: None,
        endpoint: String::new(),
        id: None,
        data: None,
        error: None,
    };
    if let Err(e) = read_operation(o, &mut op) {
        op.error = Some(e);
    }
    op
}

fn read_operation(o: &Value, op: &mut BulkOperation) -> ScimResult<()> {
    if !o.is_object() {
        return Err(ScimError::invalid_syntax("an operation must be an object"));
    }
    // What can be read is kept first, so that the response echoes it even when the rest
    // fails; the first fault found is the operation's error.
    let mut fault: Option<ScimError> = None;
    match get_ci(o, "method") {
        Some(Value::String(m)) => {
            op.method_text = short(m, 16);
            op.method = match m.to_ascii_uppercase().as_str() {
                "POST" => Some(BulkMethod::Post),
                "PUT" => Some(BulkMethod::Put),
                "PATCH" => Some(BulkMethod::Patch),
                "DELETE" => Some(BulkMethod::Delete),
                _ => {
                    fault = Some(ScimError::invalid_value(format!(
                        "method '{}' cannot be used in a Bulk request; use POST, PUT, PATCH or DELETE",
                        op.method_text
                    )));
                    None
                }
            };
            if let Some(m) = op.method {
                op.method_text = m.as_str().to_string();
            }
        }
        _ => fault = Some(ScimError::invalid_syntax("'method' must be a string")),
    }
    match get_ci(o, "bulkId") {
        None | Some(Value::Null) => {}
        Some(Value::String(b)) if b.chars().count() <= MAX_BULK_ID_LEN => {
            op.bulk_id = Some(b.clone())
        }
        Some(Value::String(b)) => {
            op.bulk_id = Some(short(b, 64));
            fault = fault.or(Some(ScimError::invalid_value(format!(
                "a bulkId has at most {MAX_BULK_ID_LEN} characters"
            ))));
        }
        Some(_) => fault = fault.or(Some(ScimError::invalid_syntax("'bulkId' must be a string"))),
    }
    match get_ci(o, "version") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) => op.version = Some(short(v, 64)),
        Some(_) => {
            fault = fault.or(Some(ScimError::invalid_syntax(
                "'version' must be a string",
            )))
        }
    }
    if let Some(e) = fault {
        return Err(e);
    }
    let method = op.method.unwrap_or(BulkMethod::Post);
    let path = match get_ci(o, "path") {
        Some(Value::String(p)) => p,
        _ => return Err(ScimError::invalid_syntax("'path' must be a string")),
    };
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let well_formed = path.starts_with('/')
        && path.len() <= 2048
        && !path.contains(['?', '#'])
        && segs.iter().all(|s| !s.is_empty());
    if !well_formed {
        return Err(ScimError::invalid_value(format!(
            "path '{}' must be '/{{resourceType}}' or '/{{resourceType}}/{{id}}'",
            short(path, 128)
        )));
    }
    if segs.first().is_some_and(|s| s.eq_ignore_ascii_case("Bulk")) {
        return Err(ScimError::invalid_value(
            "a Bulk operation cannot be a Bulk request",
        ));
    }
    match (method, segs.as_slice()) {
        (BulkMethod::Post, [ty]) => op.endpoint = ty.to_string(),
        (BulkMethod::Post, _) => {
            return Err(ScimError::invalid_value(format!(
                "a POST's path names a resource type endpoint such as '/Users', not '{}'",
                short(path, 128)
            )))
        }
        (_, [ty, id]) => {
            op.endpoint = ty.to_string();
            op.id = Some(id.to_string());
        }
        _ => {
            return Err(ScimError::invalid_value(format!(
                "a {}'s path names one resource such as '/Users/{{id}}', not '{}'",
                method.as_str(),
                short(path, 128)
            )))
        }
    }
    if method == BulkMethod::Post {
        match &op.bulk_id {
            Some(b) if !b.trim().is_empty() => {}
            _ => {
                return Err(ScimError::invalid_value(
                    "a POST operation needs a 'bulkId'",
                ))
            }
        }
    }
    match (method, get_ci(o, "data")) {
        (BulkMethod::Delete, _) => {}
        (_, Some(d @ Value::Object(_))) => op.data = Some(d.clone()),
        (m, _) => {
            return Err(ScimError::invalid_syntax(format!(
                "a {} operation needs 'data', a JSON object",
                m.as_str()
            )))
        }
    }
    Ok(())
}

/// The bulkIds a value refers to: every string of it that is `bulkId:…`, and every quoted
/// `"bulkId:…"` inside a PATCH `path` (`members[value eq "bulkId:qwerty"]`).
pub fn references(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = bulk_ref(s) {
                out.insert(id.to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(p) if k.eq_ignore_ascii_case("path") => {
                        out.extend(quoted_refs(p).into_iter().map(|(_, id)| id.to_string()));
                    }
                    x => references(x, out),
                }
            }
        }
        _ => {}
    }
}

/// The quoted references inside a filter or path: the byte range of each `bulkId:…` between
/// quotes, and its bulkId.
fn quoted_refs(p: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut out = Vec::new();
    let lower = p.to_ascii_lowercase();
    let needle = format!("\"{}", BULK_ID_PREFIX.to_ascii_lowercase());
    let mut from = 0;
    while let Some(at) = lower[from..].find(&needle) {
        let start = from + at + 1;
        let id_start = start + BULK_ID_PREFIX.len();
        let Some(len) = p[id_start..].find('"') else {
            break;
        };
        out.push((start..id_start + len, &p[id_start..id_start + len]));
        from = id_start + len;
    }
    out
}

/// The bulkId `s` refers to, if it is a reference.
pub fn bulk_ref(s: &str) -> Option<&str> {
    let head = s.get(..BULK_ID_PREFIX.len())?;
    head.eq_ignore_ascii_case(BULK_ID_PREFIX)
        .then(|| &s[BULK_ID_PREFIX.len()..])
}

/// Replace every reference in `v` by the id its bulkId was given.
pub fn substitute(v: &mut Value, ids: &HashMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = bulk_ref(s).and_then(|b| ids.get(b)) {
                *s = id.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, ids)),
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match x {
                    Value::String(p) if k.eq_ignore_ascii_case("path") => {
                        let refs = quoted_refs(p);
                        let mut out = String::with_capacity(p.len());
                        let mut last = 0;
                        for (range, b) in refs {
                            if let Some(id) = ids.get(b) {
                                out.push_str(&p[last..range.start]);
                                out.push_str(id);
                                last = range.end;
                            }
                        }
                        out.push_str(&p[last..]);
                        *p = out;
                    }
                    x => substitute(x, ids),
                }
            }
        }
        _ => {}
    }
}

/// When an operation runs, and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub index: usize,
    /// The operations that create what it refers to, each with the bulkId it refers by.
    pub after: Vec<(usize, String)>,
    /// Earlier operations it must not overtake: those on the resource it names, and those
    /// writing the userName it writes (of two that claim one, the first sent gets it).
    pub follows: Vec<usize>,
    /// Why it cannot run at all: it refers to a bulkId no operation declares, or it is part
    /// of (or waits on) a cycle of references.
    pub error: Option<ScimError>,
    /// It must run alone, after every operation before it and before any after it: a DELETE
    /// (it also changes the Groups its resource was in, and removes what others may name by
    /// id) and a write that may give up a userName (a PUT of a User, a PATCH of its userName),
    /// which a later operation may claim.
    pub alone: bool,
}

/// The order of the operations: each after those whose bulkIds it refers to, and otherwise in
/// the order sent (the earliest ready operation first). Operations that can never be ready
/// come last, each with its error.
pub fn schedule(ops: &[BulkOperation]) -> Vec<Step> {
    let declared: HashMap<&str, usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.error.is_none() && o.method == Some(BulkMethod::Post))
        .filter_map(|(i, o)| Some((o.bulk_id.as_deref()?, i)))
        .collect();
    let mut seen = BTreeSet::new();
    let twice: BTreeSet<&str> = ops
        .iter()
        .filter(|o| o.method == Some(BulkMethod::Post))
        .filter_map(|o| o.bulk_id.as_deref())
        .filter(|b| !seen.insert(*b))
        .collect();
    let mut steps: Vec<Step> = Vec::with_capacity(ops.len());
    let mut waits: Vec<usize> = vec![0; ops.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
    let mut pending: Vec<Option<Step>> = Vec::with_capacity(ops.len());
    let mut ready = BTreeSet::new();
    for (i, op) in ops.iter().enumerate() {
        let mut refs = BTreeSet::new();
        if op.error.is_none() {
            if let Some(b) = op.id.as_deref().and_then(bulk_ref) {
                refs.insert(b.to_string());
            }
            if let Some(d) = &op.data {
                references(d, &mut refs);
            }
        }
        let mut step = Step {
            index: i,
            after: Vec::new(),
            follows: Vec::new(),
            error: None,
            alone: runs_alone(op),
        };
        for b in refs {
            if twice.contains(b.as_str()) {
                step.error = Some(ScimError::invalid_value(format!(
                    "bulkId '{b}' is declared by more than one operation"
                )));
                continue;
            }
            match declared.get(b.as_str()) {
                Some(&j) if j == i => {
                    step.error = Some(ScimError::conflict(format!(
                        "the operation refers to its own bulkId '{b}'"
                    )));
                }
                Some(&j) => step.after.push((j, b)),
                None => {
                    step.error = Some(ScimError::invalid_value(format!(
                        "no POST operation of this request has bulkId '{}'",
                        short(&b, MAX_BULK_ID_LEN)
                    )));
                }
            }
        }
        if step.error.is_some() {
            step.after.clear();
        }
        for (j, _) in &step.after {
            dependents[*j].push(i);
        }
        waits[i] = step.after.len();
        if waits[i] == 0 {
            ready.insert(i);
        }
        pending.push(Some(step));
    }
    while let Some(i) = ready.pop_first() {
        for &d in &dependents[i] {
            waits[d] -= 1;
            if waits[d] == 0 {
                ready.insert(d);
            }
        }
        if let Some(step) = pending[i].take() {
            steps.push(step);
        }
    }
    for slot in pending.iter_mut() {
        if let Some(mut step) = slot.take() {
            step.error = Some(ScimError::conflict(
                "the operation's bulkId references form a cycle, or wait on one; \
                 send the resources of the cycle first and link them in a later request",
            ));
            step.after.clear();
            steps.push(step);
        }
    }
    // In the order they run, each after the last earlier one on any of its keys. A resource
    // named by `bulkId:x` has that key wherever it is named so (a client cannot know its id).
    let mut last_on: HashMap<String, usize> = HashMap::new();
    for step in steps.iter_mut() {
        for k in keys_of(&ops[step.index]) {
            if let Some(j) = last_on.insert(k, step.index) {
                if !step.follows.contains(&j) {
                    step.follows.push(j);
                }
            }
        }
    }
    steps
}

/// See [`Step::alone`].
fn runs_alone(op: &BulkOperation) -> bool {
    let users = op.endpoint.eq_ignore_ascii_case("Users");
    match op.method {
        Some(BulkMethod::Delete) => true,
        Some(BulkMethod::Put) => users,
        Some(BulkMethod::Patch) if users => {
            let names_user_name = |p: &str| {
                let plain = p.split('[').next().unwrap_or(p);
                let attr = plain.rsplit(':').next().unwrap_or(plain);
                attr.split('.')
                    .next()
                    .unwrap_or(attr)
                    .trim()
                    .eq_ignore_ascii_case("userName")
            };
            let ops = op.data.as_ref().and_then(|d| get_ci(d, "Operations"));
            let Some(Value::Array(ops)) = ops else {
                return false;
            };
            ops.iter().any(|o| match get_ci(o, "path") {
                Some(Value::String(p)) if !p.trim().is_empty() => names_user_name(p),
                // No path: the value's members are the attributes.
                _ => get_ci(o, "value").is_some_and(|v| get_ci(v, "userName").is_some()),
            })
        }
        _ => false,
    }
}

/// What an operation must not overtake an earlier one on: the resource it names, and the
/// userName it writes.
fn keys_of(op: &BulkOperation) -> Vec<String> {
    let endpoint = op.endpoint.to_ascii_lowercase();
    let mut keys = Vec::with_capacity(2);
    if let Some(i) = &op.id {
        keys.push(match bulk_ref(i) {
            Some(b) => format!("{endpoint}/bulkId:{b}"),
            None => format!("{endpoint}/{i}"),
        });
    }
    if op.method == Some(BulkMethod::Post) {
        if let Some(b) = &op.bulk_id {
            keys.push(format!("{endpoint}/bulkId:{b}"));
        }
    }
    let name = op
        .data
        .as_ref()
        .and_then(|d| get_ci(d, "userName"))
        .and_then(Value::as_str);
    if let Some(n) = name {
        keys.push(format!("{endpoint}?userName={}", crate::username::key(n)));
    }
    keys
}

#[cfg(test)]
mod tests;
