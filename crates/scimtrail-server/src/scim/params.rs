//! Query parameters and request bodies of SCIM requests.

use scimtrail_core::{parse_attr_list, AttrPath, Filter, ResourceType, ScimError, ScimResult};
use serde_json::Value;

use crate::{AppState, Ctx};

/// The largest page a list returns (also advertised in ServiceProviderConfig).
pub const MAX_RESULTS: usize = 1000;
pub const DEFAULT_COUNT: usize = 100;

/// The resource type served at `endpoint` (`Users`, `/Devices`; any case). A type's name is
/// not an endpoint (`/scim/v2/User` is 404), so what a request reaches and how its event is
/// named (`context::classify`) always agree.
pub fn resource_type<'a>(state: &'a AppState, endpoint: &str) -> ScimResult<&'a ResourceType> {
    let bare = endpoint.trim_start_matches('/');
    state
        .registry
        .resource_type(bare)
        .filter(|rt| rt.endpoint[1..].eq_ignore_ascii_case(bare))
        .ok_or_else(|| ScimError::not_found(format!("unknown resource type '{endpoint}'")))
}

/// Bodies larger than this are parsed and worked on in the blocking pool, off the async
/// worker threads that serve everyone else's requests.
pub const OFFLOAD_BYTES: usize = 64 * 1024;

/// Run CPU work for a request of `size` body bytes: inline when small, in the blocking pool
/// when large, so one heavy body never holds up other requests.
pub async fn cpu<T, F>(size: usize, f: F) -> ScimResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> ScimResult<T> + Send + 'static,
{
    if size <= OFFLOAD_BYTES {
        return f();
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ScimError::internal("the request could not be processed"))?
}

/// A request body as JSON, or `invalidSyntax` (parsed off the async threads when large).
pub async fn parse_body(ctx: &Ctx) -> ScimResult<Value> {
    if ctx.body.len() <= OFFLOAD_BYTES {
        return json_body(ctx);
    }
    let body = ctx.body.clone();
    cpu(body.len(), move || {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ScimError::invalid_syntax("a JSON request body is required"));
        }
        scimtrail_core::parse_strict(&body)
    })
    .await
}

/// The value filters of a PATCH, each and all together, are bounded like a query filter: 600
/// operations of 63 comparisons over 1000 values would otherwise cost seconds.
pub fn check_patch_cost(
    reg: &scimtrail_core::Registry,
    ops: &[scimtrail_core::PatchOperation],
) -> ScimResult<()> {
    let max = reg.max_filter_terms();
    let mut total = 0;
    for f in ops.iter().filter_map(|o| o.path.as_ref()?.filter.as_ref()) {
        f.check_terms(max)?;
        total += f.terms();
    }
    if total > 4 * max {
        return Err(ScimError::invalid_filter(format!(
            "the PATCH's value filters hold {total} comparisons in all; at most {} are accepted",
            4 * max
        )));
    }
    Ok(())
}

/// A request body as JSON, or `invalidSyntax`.
pub fn json_body(ctx: &Ctx) -> ScimResult<Value> {
    if ctx.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax("a JSON request body is required"));
    }
    scimtrail_core::parse_strict(&ctx.body)
}

/// Query parameters, names matched case-insensitively.
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(ctx: &Ctx) -> ScimResult<Self> {
        let q = ctx.raw_query.as_deref().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(QueryParams)
            .map_err(|_| ScimError::invalid_value("the query string is not valid URL encoding"))
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `count` of a paged audit read: `default` when absent, clamped to `0..=max`.
    pub fn count(&self, default: usize, max: usize) -> ScimResult<usize> {
        match self.get("count") {
            Some(c) => Ok(saturating_int(c)
                .ok_or_else(|| ScimError::invalid_value("'count' must be an integer"))?
                .clamp(0, max as i64) as usize),
            None => Ok(default),
        }
    }
}

/// `attributes` / `excludedAttributes`.
#[derive(Debug, Default, Clone)]
pub struct View {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
    /// In the answer to a write: what it specified (see [`scimtrail_core::project_write`]).
    pub specified: Vec<AttrPath>,
}

impl View {
    pub fn new(attributes: Option<&str>, excluded: Option<&str>) -> ScimResult<Self> {
        Ok(View {
            attributes: attributes
                .map(parse_attr_list)
                .transpose()?
                .unwrap_or_default(),
            excluded: excluded
                .map(parse_attr_list)
                .transpose()?
                .unwrap_or_default(),
            specified: Vec::new(),
        })
    }

    /// This view for the answer to a write that specified the attributes of `data` (a POST
    /// or PUT body in stored form) or, for a PATCH, those in `changes`.
    pub fn of_write(
        mut self,
        data: Option<&serde_json::Value>,
        changes: &[scimtrail_audit::Change],
    ) -> Self {
        let mut paths = Vec::new();
        if let Some(obj) = data.and_then(serde_json::Value::as_object) {
            for (k, v) in obj.iter().filter(|(k, _)| *k != "schemas") {
                match v.as_object().filter(|_| k.contains(':')) {
                    Some(ext) => paths.extend(ext.keys().map(|a| AttrPath {
                        urn: Some(k.clone()),
                        name: a.clone(),
                        sub: None,
                    })),
                    None => paths.push(AttrPath::simple(k)),
                }
            }
        }
        paths.extend(changes.iter().filter_map(|c| AttrPath::parse(&c.path).ok()));
        self.specified = paths;
        self
    }
    pub fn from_query(q: &QueryParams) -> ScimResult<Self> {
        View::new(q.get("attributes"), q.get("excludedAttributes"))
    }
    /// Whether the response needs an attribute (so the store can skip loading it, E8).
    pub fn wants(&self, name: &str) -> bool {
        let named = |l: &[AttrPath]| {
            l.iter()
                .any(|p| p.name.eq_ignore_ascii_case(name) && p.sub.is_none())
        };
        let in_attrs = self.attributes.is_empty()
            || self
                .attributes
                .iter()
                .any(|p| p.name.eq_ignore_ascii_case(name));
        in_attrs && !named(&self.excluded)
    }
}

/// A list or search request.
#[derive(Debug)]
pub struct ListParams {
    pub filter: Option<Filter>,
    pub start_index: usize,
    /// Whether `startIndex` was sent (it cannot be combined with `cursor`).
    pub start_given: bool,
    pub count: usize,
    pub view: View,
    pub sort: Option<scimtrail_store::Sort>,
    /// `cursor` (RFC 9865): empty for the first page of a cursor-paged list.
    pub cursor: Option<String>,
}

/// `sortBy` and `sortOrder` (RFC 7644 §3.4.2.3): the order defaults to ascending, and is
/// ignored without `sortBy`.
fn sort(by: Option<&str>, order: Option<&str>) -> ScimResult<Option<scimtrail_store::Sort>> {
    let descending = match order.map(str::trim) {
        None | Some("") => false,
        Some(o) if o.eq_ignore_ascii_case("ascending") => false,
        Some(o) if o.eq_ignore_ascii_case("descending") => true,
        Some(_) => {
            return Err(ScimError::invalid_value(
                "'sortOrder' is \"ascending\" or \"descending\"",
            ))
        }
    };
    match by.map(str::trim).filter(|b| !b.is_empty()) {
        None => Ok(None),
        Some(b) => Ok(Some(scimtrail_store::Sort {
            by: scimtrail_core::AttrPath::parse(b)?,
            descending,
        })),
    }
}

/// A `sortBy` must not name a secret: the order of the results would tell its values apart.
pub fn check_sort(
    reg: &scimtrail_core::Registry,
    rt: &ResourceType,
    sort: Option<&scimtrail_store::Sort>,
) -> ScimResult<()> {
    match sort.and_then(|s| Some((s, reg.resolve(rt, &s.by)?.1))) {
        Some((s, a)) if a.is_secret() => Err(ScimError::invalid_value(format!(
            "attribute '{}' cannot be sorted on",
            s.by
        ))),
        _ => Ok(()),
    }
}

/// An integer in decimal digits, saturated to the `i64` range: a `count` beyond any integer
/// is still "more than the maximum", which RFC 7644 §3.4.2.4 clamps rather than refuses.
fn saturating_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match digits.parse::<i64>() {
        Ok(v) if negative => -v,
        Ok(v) => v,
        Err(_) if negative => i64::MIN,
        Err(_) => i64::MAX,
    })
}

fn number(name: &str, v: Option<&Value>) -> ScimResult<Option<i64>> {
    let not_an_integer = || ScimError::invalid_value(format!("'{name}' must be an integer"));
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            // `1e30`: integral, beyond any integer; `as` saturates.
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(not_an_integer),
        Some(Value::String(s)) => saturating_int(s).map(Some).ok_or_else(not_an_integer),
        Some(_) => Err(ScimError::invalid_value(format!(
            "'{name}' must be an integer"
        ))),
    }
}

impl ListParams {
    fn build(
        filter: Option<&str>,
        start: Option<i64>,
        count: Option<i64>,
        view: View,
        sort: Option<scimtrail_store::Sort>,
        cursor: Option<String>,
    ) -> ScimResult<Self> {
        let filter = match filter.map(str::trim).filter(|f| !f.is_empty()) {
            Some(f) => Some(Filter::parse(f)?),
            None => None,
        };
        Ok(ListParams {
            filter,
            start_index: start.unwrap_or(1).max(1) as usize,
            start_given: start.is_some(),
            cursor,
            count: count
                .unwrap_or(DEFAULT_COUNT as i64)
                .clamp(0, MAX_RESULTS as i64) as usize,
            view,
            sort,
        })
    }

    pub fn from_query(q: &QueryParams) -> ScimResult<Self> {
        let n = |name: &str| number(name, q.get(name).map(|s| Value::String(s.into())).as_ref());
        Self::build(
            q.get("filter"),
            n("startIndex")?,
            n("count")?,
            View::from_query(q)?,
            sort(q.get("sortBy"), q.get("sortOrder"))?,
            q.get("cursor").map(str::to_string),
        )
    }

    /// A `SearchRequest` body (RFC 7644 §3.4.3).
    pub fn from_body(body: &Value) -> ScimResult<Self> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
        let get = |k: &str| {
            obj.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        };
        let text = |k: &str| -> ScimResult<Option<String>> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(a)) => Ok(Some(
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                )),
                Some(_) => Err(ScimError::invalid_value(format!("'{k}' must be a string"))),
            }
        };
        let view = View::new(
            text("attributes")?.as_deref(),
            text("excludedAttributes")?.as_deref(),
        )?;
        Self::build(
            text("filter")?.as_deref(),
            number("startIndex", get("startIndex"))?,
            number("count", get("count"))?,
            view,
            sort(text("sortBy")?.as_deref(), text("sortOrder")?.as_deref())?,
            text("cursor")?,
        )
    }
}

/// Check a filter against the resource type's schema before running it:
/// - a secret (writeOnly or `returned: never`) attribute cannot be filtered on — that would let a
///   client probe values the server never shows;
/// - the comparison must fit the attribute's type: `gt`/`ge`/`lt`/`le` on a boolean or binary
///   attribute is `invalidFilter` (RFC 7644 §3.4.2.2), as is a value of the wrong JSON type or a
///   date that is not RFC 3339.
///
/// Attributes the schema does not define are left alone: they match nothing.
pub fn check_filter(
    reg: &scimtrail_core::Registry,
    rt: &ResourceType,
    filter: &Filter,
) -> ScimResult<()> {
    filter.check_terms(reg.max_filter_terms())?;
    check_attrs(reg, rt, filter)
}

fn check_attrs(
    reg: &scimtrail_core::Registry,
    rt: &ResourceType,
    filter: &Filter,
) -> ScimResult<()> {
    match filter {
        Filter::Present(p) => check_compare(reg, rt, p, None),
        Filter::Compare(p, op, v) => check_compare(reg, rt, p, Some((op, v))),
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_attrs(reg, rt, a)?;
            check_attrs(reg, rt, b)
        }
        Filter::Not(inner) => check_attrs(reg, rt, inner),
        Filter::ValuePath(p, inner) => {
            check_compare(reg, rt, p, None)?;
            check_value_path(reg, rt, p, inner)
        }
    }
}

type Cmp<'a> = Option<(&'a scimtrail_core::CompareOp, &'a scimtrail_core::CompValue)>;

/// The terms inside `attr[...]` name sub-attributes of `attr`.
fn check_value_path(
    reg: &scimtrail_core::Registry,
    rt: &ResourceType,
    parent: &scimtrail_core::AttrPath,
    inner: &Filter,
) -> ScimResult<()> {
    let sub = |p: &scimtrail_core::AttrPath| scimtrail_core::AttrPath {
        urn: parent.urn.clone(),
        name: parent.name.clone(),
        sub: Some(p.name.clone()),
    };
    match inner {
        Filter::Present(p) | Filter::ValuePath(p, _) => check_compare(reg, rt, &sub(p), None),
        Filter::Compare(p, op, v) => check_compare(reg, rt, &sub(p), Some((op, v))),
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_value_path(reg, rt, parent, a)?;
            check_value_path(reg, rt, parent, b)
        }
        Filter::Not(f) => check_value_path(reg, rt, parent, f),
    }
}

fn check_compare(
    reg: &scimtrail_core::Registry,
    rt: &ResourceType,
    p: &scimtrail_core::AttrPath,
    cmp: Cmp<'_>,
) -> ScimResult<()> {
    use scimtrail_core::{AttrType, CompValue, CompareOp};
    let Some((_, a)) = reg.resolve(rt, p) else {
        return Ok(());
    };
    if a.is_secret() {
        return Err(ScimError::invalid_filter(format!(
            "attribute '{p}' cannot be filtered on"
        )));
    }
    let Some((op, value)) = cmp else {
        return Ok(());
    };
    let ordering = matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    );
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    // A complex attribute without a sub-attribute compares its `value`.
    let ty = match (&a.attr_type, a.sub_attribute("value")) {
        (AttrType::Complex, Some(v)) => &v.attr_type,
        (t, _) => t,
    };
    let bad = |why: &str| Err(ScimError::invalid_filter(format!("'{p}' {why}")));
    match (ty, value) {
        (_, CompValue::Null) if ordering || substring => bad("cannot be compared with null"),
        (_, CompValue::Null) => Ok(()),
        (AttrType::Boolean | AttrType::Binary, _) if ordering => {
            bad("cannot be compared with gt, ge, lt or le")
        }
        (AttrType::Boolean, CompValue::Bool(_)) if !substring => Ok(()),
        (AttrType::Boolean, _) => bad("is a boolean: compare it with eq or ne and true or false"),
        (AttrType::Integer | AttrType::Decimal, CompValue::Number(_)) if !substring => Ok(()),
        (AttrType::Integer | AttrType::Decimal, _) => bad("is a number"),
        (AttrType::DateTime, CompValue::String(s)) if !substring => {
            match time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
                Ok(_) => Ok(()),
                Err(_) => bad("is a date-time: the value must be RFC 3339"),
            }
        }
        (AttrType::DateTime, _) => bad("is a date-time: compare it with an RFC 3339 string"),
        (AttrType::Complex, _) => Ok(()),
        (_, CompValue::String(_)) => Ok(()),
        (_, _) => bad("is a string: the value must be a string"),
    }
}
