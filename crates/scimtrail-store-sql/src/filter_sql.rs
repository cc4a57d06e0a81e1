//! SCIM filter → SQL `WHERE` fragment with bound parameters, over a fixed set of columns.
//!
//! Used for audit event queries (every filterable attribute is a column) and for the indexed part
//! of resource list filters. Values are always bound, never spliced into SQL.

use scimtrail_core::{AttrPath, CompValue, CompareOp, Filter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    /// Compared exactly.
    Text,
    /// Stored lower-cased; the operand is lower-cased.
    TextCi,
    /// A userName's uniqueness key (`scimtrail_core::username::key`); so is the operand.
    UserName,
    Int,
    /// RFC 3339 text in the log's one fixed format; operands are normalised to it.
    Time,
    /// A JSON boolean as SQLite reads it (1 or 0); only `eq`, `ne` and `pr` translate.
    Bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColKind,
    /// For a multi-valued attribute kept in a table of its own: the opening of the `EXISTS`
    /// subquery (ending in `AND `) inside which the comparison on `name` is made.
    pub exists: Option<&'static str>,
}

impl Column {
    pub fn new(name: &'static str, kind: ColKind) -> Self {
        Column {
            name,
            kind,
            exists: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// The translation of a filter, or the reason it cannot be translated.
pub fn to_sql(
    filter: &Filter,
    column: &dyn Fn(&AttrPath) -> Option<Column>,
    sql: &mut String,
    params: &mut Vec<Param>,
) -> Result<(), String> {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            let op = if matches!(filter, Filter::And(..)) {
                " AND "
            } else {
                " OR "
            };
            sql.push('(');
            to_sql(a, column, sql, params)?;
            sql.push_str(op);
            to_sql(b, column, sql, params)?;
            sql.push(')');
        }
        Filter::Not(inner) => {
            // SCIM filters are two-valued: a comparison with an absent (NULL) attribute is
            // false, so its negation is true. SQL's `NOT NULL` is NULL (no match); COALESCE
            // turns the unknown into false first. (AND and OR already agree with NULL = false.)
            sql.push_str("NOT COALESCE((");
            to_sql(inner, column, sql, params)?;
            sql.push_str("), FALSE)");
        }
        Filter::Present(path) => {
            let col = column(path).ok_or_else(|| unknown(path))?;
            sql.push_str(col.exists.unwrap_or(""));
            sql.push_str(&format!("{} IS NOT NULL", col.name));
            sql.push_str(if col.exists.is_some() { ")" } else { "" });
        }
        Filter::Compare(path, op, value) => {
            let col = column(path).ok_or_else(|| unknown(path))?;
            sql.push_str(col.exists.unwrap_or(""));
            compare(col, op, value, sql, params)?;
            sql.push_str(if col.exists.is_some() { ")" } else { "" });
        }
        Filter::ValuePath(path, _) => {
            return Err(format!("value filters are not supported on '{path}'"));
        }
    }
    Ok(())
}

fn unknown(path: &AttrPath) -> String {
    format!("attribute '{path}' cannot be filtered on")
}

fn operand(col: Column, value: &CompValue) -> Result<Option<Param>, String> {
    Ok(match (col.kind, value) {
        (_, CompValue::Null) => None,
        (ColKind::Int, CompValue::Number(n)) => {
            Some(Param::Int(n.as_i64().ok_or("an integer is expected")?))
        }
        (ColKind::Int, CompValue::String(s)) => Some(Param::Int(
            s.parse()
                .map_err(|_| format!("'{}' expects an integer", col.name))?,
        )),
        (ColKind::Bool, CompValue::Bool(b)) => Some(Param::Int(i64::from(*b))),
        (ColKind::Bool, _) => return Err("a boolean is expected".into()),
        (ColKind::Text, CompValue::String(s)) => Some(Param::Text(s.clone())),
        (ColKind::TextCi, CompValue::String(s)) => Some(Param::Text(s.to_lowercase())),
        (ColKind::UserName, CompValue::String(s)) => {
            Some(Param::Text(scimtrail_core::username::key(s)))
        }
        (ColKind::Time, CompValue::String(s)) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|_| "a time must be an RFC 3339 date-time".to_string())?;
            Some(Param::Text(scimtrail_audit::format_time(t)))
        }
        (ColKind::Text | ColKind::TextCi | ColKind::UserName, CompValue::Number(n)) => {
            Some(Param::Text(n.to_string()))
        }
        (_, CompValue::Bool(_)) | (_, CompValue::Number(_)) => {
            return Err("the value has the wrong type for this attribute".into())
        }
    })
}

fn compare(
    col: Column,
    op: &CompareOp,
    value: &CompValue,
    sql: &mut String,
    params: &mut Vec<Param>,
) -> Result<(), String> {
    let name = col.name;
    let Some(p) = operand(col, value)? else {
        match op {
            CompareOp::Eq => sql.push_str(&format!("{name} IS NULL")),
            CompareOp::Ne => sql.push_str(&format!("{name} IS NOT NULL")),
            _ => return Err("null can only be compared with eq or ne".into()),
        }
        return Ok(());
    };
    if col.kind == ColKind::Bool && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
        // A SCIM boolean is only equal or not; `gt` would order false before true.
        return Err("a boolean compares only with eq or ne".into());
    }
    let text_only = |what: &str| -> Result<(), String> {
        if matches!(p, Param::Int(_)) {
            Err(format!("'{what}' needs a string attribute"))
        } else {
            Ok(())
        }
    };
    let frag = match op {
        CompareOp::Eq => format!("{name} = ?"),
        CompareOp::Ne => format!("({name} IS NULL OR {name} <> ?)"),
        CompareOp::Gt => format!("{name} > ?"),
        CompareOp::Ge => format!("{name} >= ?"),
        CompareOp::Lt => format!("{name} < ?"),
        CompareOp::Le => format!("{name} <= ?"),
        CompareOp::Co => {
            text_only("co")?;
            format!("instr({name}, ?) > 0")
        }
        CompareOp::Sw => {
            text_only("sw")?;
            params.push(p.clone());
            format!("substr({name}, 1, length(?)) = ?")
        }
        CompareOp::Ew => {
            text_only("ew")?;
            params.push(p.clone());
            // The suffix of the operand's length, in a form both backends read alike
            // (PostgreSQL's `substr` does not count from the end for a negative start). An
            // operand longer than the value starts at or before 1: the whole value, unequal.
            format!("substr({name}, length({name}) - length(?) + 1) = ?")
        }
    };
    sql.push_str(&frag);
    params.push(p);
    Ok(())
}

/// Split a filter into its top-level `and` terms.
pub fn conjuncts(filter: &Filter) -> Vec<&Filter> {
    match filter {
        Filter::And(a, b) => {
            let mut v = conjuncts(a);
            v.extend(conjuncts(b));
            v
        }
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(p: &AttrPath) -> Option<Column> {
        match (p.name.to_ascii_lowercase().as_str(), p.sub.as_deref()) {
            ("requestid", None) => Some(Column::new("request_id", ColKind::Text)),
            ("outcome", Some("status")) => Some(Column::new("status", ColKind::Int)),
            ("time", None) => Some(Column::new("time", ColKind::Time)),
            _ => None,
        }
    }

    fn tr(f: &str) -> Result<(String, Vec<Param>), String> {
        let f = Filter::parse(f).map_err(|e| e.detail)?;
        let (mut s, mut p) = (String::new(), vec![]);
        to_sql(&f, &cols, &mut s, &mut p)?;
        Ok((s, p))
    }

    #[test]
    fn translates() {
        let (s, p) = tr(r#"requestId eq "r1" and outcome.status ge 400"#).unwrap();
        assert_eq!(s, "(request_id = ? AND status >= ?)");
        assert_eq!(p, vec![Param::Text("r1".into()), Param::Int(400)]);
        let (s, p) = tr(r#"time gt "2026-01-01T00:00:00Z""#).unwrap();
        assert_eq!(s, "time > ?");
        assert_eq!(p, vec![Param::Text("2026-01-01T00:00:00.000000Z".into())]);
        let (s, _) = tr(r#"not (requestId sw "ab") or requestId pr"#).unwrap();
        assert_eq!(
            s,
            "(NOT COALESCE((substr(request_id, 1, length(?)) = ?), FALSE) OR request_id IS NOT NULL)"
        );
        assert!(tr(r#"nope eq "x""#).is_err());
        assert!(tr(r#"outcome.status co 4"#).is_err());
    }
}
