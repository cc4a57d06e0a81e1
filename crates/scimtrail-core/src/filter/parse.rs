//! Lexer and recursive-descent parser for RFC 7644 §3.4.2.2 filters.

use super::{CompValue, CompareOp, Filter, MAX_FILTER_DEPTH, MAX_FILTER_LEN};
use crate::error::{ScimError, ScimResult};
use crate::path::{short, AttrPath};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBrack,
    RBrack,
    Str(String),
    Word(String),
}

fn describe(t: Option<&(Tok, usize)>) -> String {
    match t {
        None => "end of filter".to_string(),
        Some((tok, pos)) => {
            let what = match tok {
                Tok::LParen => "'('".to_string(),
                Tok::RParen => "')'".to_string(),
                Tok::LBrack => "'['".to_string(),
                Tok::RBrack => "']'".to_string(),
                Tok::Str(_) => "a string literal".to_string(),
                Tok::Word(w) => format!("'{}'", short(w)),
            };
            format!("{what} at position {pos}")
        }
    }
}

fn lex(s: &str) -> ScimResult<Vec<(Tok, usize)>> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                let t = match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBrack,
                    _ => Tok::RBrack,
                };
                out.push((t, i));
            }
            '"' => {
                chars.next();
                let mut escaped = false;
                let mut end = None;
                for (j, d) in chars.by_ref() {
                    match (escaped, d) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = Some(j);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or_else(|| {
                    ScimError::invalid_filter(format!(
                        "unterminated string literal at position {i}"
                    ))
                })?;
                let lit = s.get(i..=end).unwrap_or("");
                let v: String = serde_json::from_str(lit).map_err(|_| {
                    ScimError::invalid_filter(format!("invalid string literal at position {i}"))
                })?;
                out.push((Tok::Str(v), i));
            }
            _ => {
                let mut end = s.len();
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_whitespace() || matches!(d, '(' | ')' | '[' | ']' | '"') {
                        end = j;
                        break;
                    }
                    chars.next();
                }
                out.push((Tok::Word(s.get(i..end).unwrap_or("").to_string()), i));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
    in_brackets: bool,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn peek_word(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn err(&self, expected: &str) -> ScimError {
        ScimError::invalid_filter(format!(
            "expected {expected}, found {}",
            describe(self.toks.get(self.pos))
        ))
    }
    fn expect(&mut self, t: Tok, what: &str) -> ScimResult<()> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }
    fn enter(&mut self) -> ScimResult<()> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(ScimError::invalid_filter(format!(
                "filter nesting deeper than {MAX_FILTER_DEPTH}"
            )));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> ScimResult<Filter> {
        let mut left = self.parse_and()?;
        while self.peek_word("or") {
            self.pos += 1;
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> ScimResult<Filter> {
        let mut left = self.parse_unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_group(&mut self) -> ScimResult<Filter> {
        self.enter()?;
        self.expect(Tok::LParen, "'('")?;
        let f = self.parse_or()?;
        self.expect(Tok::RParen, "')'")?;
        self.depth -= 1;
        Ok(f)
    }

    fn parse_unary(&mut self) -> ScimResult<Filter> {
        let is_not =
            self.peek_word("not") && matches!(self.toks.get(self.pos + 1), Some((Tok::LParen, _)));
        if is_not {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.parse_group()?)));
        }
        let word = match self.peek() {
            Some(Tok::LParen) => return self.parse_group(),
            Some(Tok::Word(w)) => w.clone(),
            _ => return Err(self.err("an attribute path, '(' or 'not'")),
        };
        let path = AttrPath::parse(&word).map_err(|_| self.err("an attribute path"))?;
        self.pos += 1;
        if self.peek() == Some(&Tok::LBrack) {
            if self.in_brackets || path.sub.is_some() {
                return Err(self.err("a comparison operator"));
            }
            self.enter()?;
            self.pos += 1;
            self.in_brackets = true;
            let inner = self.parse_or()?;
            self.in_brackets = false;
            self.expect(Tok::RBrack, "']'")?;
            self.depth -= 1;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let op = match self.peek() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                self.pos += 1;
                return Ok(Filter::Present(path));
            }
            Some(Tok::Word(w)) => CompareOp::from_keyword(w),
            _ => None,
        }
        .ok_or_else(|| self.err("a comparison operator or 'pr'"))?;
        self.pos += 1;
        let value = match self.peek() {
            Some(Tok::Str(s)) => CompValue::String(s.clone()),
            Some(Tok::Word(w)) => literal(w).ok_or_else(|| self.err("a value"))?,
            _ => return Err(self.err("a value")),
        };
        self.pos += 1;
        Ok(Filter::Compare(path, op, value))
    }
}

fn literal(w: &str) -> Option<CompValue> {
    if w.eq_ignore_ascii_case("true") {
        Some(CompValue::Bool(true))
    } else if w.eq_ignore_ascii_case("false") {
        Some(CompValue::Bool(false))
    } else if w.eq_ignore_ascii_case("null") {
        Some(CompValue::Null)
    } else if w.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        // serde_json validates the JSON number grammar; floats are re-read with the correctly
        // rounding std parser so that printing and re-parsing is exact.
        let n = w.parse::<serde_json::Number>().ok()?;
        if n.is_f64() {
            serde_json::Number::from_f64(w.parse::<f64>().ok()?).map(CompValue::Number)
        } else {
            Some(CompValue::Number(n))
        }
    } else {
        None
    }
}

pub(super) fn parse(s: &str, in_brackets: bool) -> ScimResult<Filter> {
    if s.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter(format!(
            "filter longer than {MAX_FILTER_LEN} bytes"
        )));
    }
    if s.trim().is_empty() {
        return Err(ScimError::invalid_filter("empty filter"));
    }
    let toks = lex(s)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        in_brackets,
    };
    let f = p.parse_or()?;
    if p.pos < p.toks.len() {
        return Err(p.err("'and', 'or' or end of filter"));
    }
    Ok(f)
}
