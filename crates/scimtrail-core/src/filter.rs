//! SCIM filters (RFC 7644 §3.4.2.2): the AST, its canonical printer, the parser (`parse.rs`) and
//! the evaluator over JSON resources (`eval.rs`).

mod eval;
mod parse;

pub use eval::{sort_key, SortKey};

use std::fmt;

use crate::error::ScimResult;
use crate::path::AttrPath;

pub(crate) use eval::get_ci;

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8192;
/// Deepest nesting of parentheses, `not (…)` and `[…]` accepted.
pub const MAX_FILTER_DEPTH: usize = 64;

/// Default of [`Registry::max_filter_terms`](crate::Registry::max_filter_terms): the most
/// comparisons (`eq`, `co`, `pr`…) one filter may hold. An IdP sends one or two; 400 `co`
/// terms over 100k emails took 8 s.
pub const DEFAULT_MAX_TERMS: usize = 64;

/// Comparison operators (RFC 7644 §3.4.2.2, Table 3).
#[derive(Debug, Clone, PartialEq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub fn as_str(&self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// The operator for this keyword (case-insensitive).
    pub fn from_keyword(s: &str) -> Option<CompareOp> {
        const ALL: [CompareOp; 9] = [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ];
        ALL.into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(s))
    }
}

/// compValue of RFC 7644: false / null / true / number / string.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
}

impl CompValue {
    /// The JSON value of this literal.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            CompValue::Null => serde_json::Value::Null,
            CompValue::Bool(b) => serde_json::Value::Bool(*b),
            CompValue::Number(n) => serde_json::Value::Number(n.clone()),
            CompValue::String(s) => serde_json::Value::String(s.clone()),
        }
    }
}

/// A parsed filter. `and` binds tighter than `or`; `not` applies to a parenthesised filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Present(AttrPath),
    Compare(AttrPath, CompareOp, CompValue),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// attr[inner] — inner's paths are relative to attr's elements
    ValuePath(AttrPath, Box<Filter>),
}

impl Filter {
    /// How many comparisons the filter holds (`pr` included): what evaluating it costs per
    /// resource, beyond its length.
    pub fn terms(&self) -> usize {
        match self {
            Filter::Present(_) | Filter::Compare(..) => 1,
            Filter::And(a, b) | Filter::Or(a, b) => a.terms() + b.terms(),
            Filter::Not(f) | Filter::ValuePath(_, f) => f.terms(),
        }
    }

    /// `invalidFilter` when the filter holds more than `max` comparisons.
    pub fn check_terms(&self, max: usize) -> ScimResult<()> {
        let n = self.terms();
        if n > max {
            return Err(crate::ScimError::invalid_filter(format!(
                "the filter has {n} comparisons; at most {max} are accepted"
            )));
        }
        Ok(())
    }

    /// Parse a filter; errors are `invalidFilter` (400) and quote the position and token.
    pub fn parse(s: &str) -> ScimResult<Filter> {
        parse::parse(s, false)
    }

    /// Parse the inside of a valuePath's brackets (no nested valuePath allowed).
    pub(crate) fn parse_value_filter(s: &str) -> ScimResult<Filter> {
        parse::parse(s, true)
    }

    fn precedence(&self) -> u8 {
        match self {
            Filter::Or(..) => 1,
            Filter::And(..) => 2,
            _ => 3,
        }
    }

    /// The `attr eq value` pairs of a filter made only of `eq` comparisons joined by `and`
    /// (used to create the element a PATCH valuePath filter names when none exists yet).
    pub(crate) fn eq_pairs(&self) -> Option<Vec<(&AttrPath, &CompValue)>> {
        match self {
            Filter::Compare(p, CompareOp::Eq, v) => Some(vec![(p, v)]),
            Filter::And(a, b) => {
                let mut out = a.eq_pairs()?;
                out.extend(b.eq_pairs()?);
                Some(out)
            }
            _ => None,
        }
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::String(s) => f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?),
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, child: &Filter, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({child})")
    } else {
        write!(f, "{child}")
    }
}

impl fmt::Display for Filter {
    /// Canonical form: lowercase operators, JSON string literals, minimal parentheses such that
    /// `Filter::parse(&f.to_string()) == Ok(f)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::Compare(p, op, v) => write!(f, "{p} {} {v}", op.as_str()),
            Filter::And(a, b) | Filter::Or(a, b) => {
                let (prec, word) = (
                    self.precedence(),
                    if matches!(self, Filter::And(..)) {
                        "and"
                    } else {
                        "or"
                    },
                );
                write_operand(f, a, a.precedence() < prec)?;
                write!(f, " {word} ")?;
                write_operand(f, b, b.precedence() <= prec)
            }
            Filter::Not(x) => write!(f, "not ({x})"),
            Filter::ValuePath(p, x) => write!(f, "{p}[{x}]"),
        }
    }
}

#[cfg(test)]
mod tests;
