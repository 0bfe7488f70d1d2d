//! A real subset of SOQL: `SELECT f, … FROM Object [WHERE …] [ORDER BY f [ASC|DESC] [NULLS
//! FIRST|LAST], …] [LIMIT n] [OFFSET n]`, with `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`, `IN (…)`,
//! `NOT IN (…)`, `LIKE`, `AND`, `OR`, `NOT`, parentheses, string / number / boolean / null literals,
//! date literals (`2024-01-15`) and date-time literals (`2024-01-15T10:30:00Z`,
//! `2024-01-15T10:30:00.000+00:00`). Text comparisons are case-insensitive, as in Salesforce.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::records::parse_datetime;

/// A parse error; Salesforce answers these with 400 `MALFORMED_QUERY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    DateTime(DateTime<Utc>),
    Date(NaiveDate),
    Comma,
    LParen,
    RParen,
    Op(&'static str),
}

fn tokenize(input: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            '=' => {
                tokens.push(Token::Op("="));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Op("!="));
                i += 2;
            }
            '<' => {
                let (op, n) = match chars.get(i + 1) {
                    Some('=') => ("<=", 2),
                    Some('>') => ("!=", 2),
                    _ => ("<", 1),
                };
                tokens.push(Token::Op(op));
                i += n;
            }
            '>' => {
                let (op, n) = if chars.get(i + 1) == Some(&'=') { (">=", 2) } else { (">", 1) };
                tokens.push(Token::Op(op));
                i += n;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(QueryError("unterminated string literal".to_owned())),
                        Some('\\') => {
                            let escaped = chars.get(i + 1).ok_or_else(|| QueryError("bad escape".to_owned()))?;
                            s.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                other => *other,
                            });
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(other) => {
                            s.push(*other);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | ':' | '-' | '+'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if let Some(t) = parse_datetime(&word) {
                    tokens.push(Token::DateTime(t));
                } else if let Ok(d) = NaiveDate::parse_from_str(&word, "%Y-%m-%d") {
                    tokens.push(Token::Date(d));
                } else {
                    let n = word.parse::<f64>().map_err(|_| QueryError(format!("unexpected token: '{word}'")))?;
                    tokens.push(Token::Num(n));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.')) {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(QueryError(format!("unexpected token: '{other}'"))),
        }
    }
    Ok(tokens)
}

/// A literal value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `'text'`
    Text(String),
    /// `12.5`
    Number(f64),
    /// `true` / `false`
    Bool(bool),
    /// `null`
    Null,
    /// `2024-01-15T10:30:00Z`
    DateTime(DateTime<Utc>),
    /// `2024-01-15`
    Date(NaiveDate),
}

/// A `WHERE` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `field op literal`
    Compare(String, &'static str, Literal),
    /// `field [NOT] IN (…)`
    In(String, Vec<Literal>, bool),
    /// `field LIKE 'pattern'`
    Like(String, String),
    /// `a AND b`
    And(Box<Condition>, Box<Condition>),
    /// `a OR b`
    Or(Box<Condition>, Box<Condition>),
    /// `NOT a`
    Not(Box<Condition>),
}

/// One `ORDER BY` key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    /// Field.
    pub field: String,
    /// Descending.
    pub descending: bool,
    /// Nulls first (the default for ascending).
    pub nulls_first: bool,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Selected fields, as written (none for `SELECT COUNT()`).
    pub fields: Vec<String>,
    /// `SELECT COUNT()`: the answer is `totalSize` with no records.
    pub count: bool,
    /// The object.
    pub object: String,
    /// The condition.
    pub condition: Option<Condition>,
    /// Sort keys.
    pub order: Vec<OrderKey>,
    /// `LIMIT`.
    pub limit: Option<usize>,
    /// `OFFSET`.
    pub offset: Option<usize>,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), QueryError> {
        if self.keyword(word) { Ok(()) } else { Err(self.unexpected(&format!("expecting '{word}'"))) }
    }

    fn unexpected(&self, what: &str) -> QueryError {
        let found = match self.peek() {
            Some(Token::Ident(w)) => w.clone(),
            Some(other) => format!("{other:?}"),
            None => "end of query".to_owned(),
        };
        QueryError(format!("unexpected token: '{found}' ({what})"))
    }

    fn ident(&mut self) -> Result<String, QueryError> {
        match self.next() {
            Some(Token::Ident(w)) => Ok(w),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("expecting a field name"))
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, QueryError> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Literal::Text(s)),
            Some(Token::Num(n)) => Ok(Literal::Number(n)),
            Some(Token::DateTime(t)) => Ok(Literal::DateTime(t)),
            Some(Token::Date(d)) => Ok(Literal::Date(d)),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("expecting a literal"))
            }
        }
    }

    fn condition(&mut self) -> Result<Condition, QueryError> {
        let mut left = self.conjunction()?;
        while self.keyword("OR") {
            left = Condition::Or(Box::new(left), Box::new(self.conjunction()?));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Condition, QueryError> {
        let mut left = self.unary()?;
        while self.keyword("AND") {
            left = Condition::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Condition, QueryError> {
        if self.keyword("NOT") {
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let inner = self.condition()?;
            if self.next() != Some(Token::RParen) {
                return Err(QueryError("expecting ')'".to_owned()));
            }
            return Ok(inner);
        }
        let field = self.ident()?;
        if self.keyword("LIKE") {
            return match self.literal()? {
                Literal::Text(p) => Ok(Condition::Like(field, p)),
                _ => Err(QueryError("LIKE needs a string".to_owned())),
            };
        }
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            if self.next() != Some(Token::LParen) {
                return Err(QueryError("expecting '(' after IN".to_owned()));
            }
            let mut values = vec![self.literal()?];
            while self.peek() == Some(&Token::Comma) {
                self.pos += 1;
                values.push(self.literal()?);
            }
            if self.next() != Some(Token::RParen) {
                return Err(QueryError("expecting ')'".to_owned()));
            }
            return Ok(Condition::In(field, values, negated));
        }
        if negated {
            return Err(self.unexpected("expecting IN after NOT"));
        }
        match self.next() {
            Some(Token::Op(op)) => Ok(Condition::Compare(field, op, self.literal()?)),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("expecting an operator"))
            }
        }
    }
}

/// Parses a query.
pub fn parse(soql: &str) -> Result<Query, QueryError> {
    let mut p = Parser { tokens: tokenize(soql)?, pos: 0 };
    p.expect_keyword("SELECT")?;
    let count = p.tokens.get(p.pos..p.pos + 3).is_some_and(|t| {
        matches!(&t[0], Token::Ident(w) if w.eq_ignore_ascii_case("COUNT"))
            && t[1] == Token::LParen
            && t[2] == Token::RParen
    });
    let mut fields = Vec::new();
    if count {
        p.pos += 3;
    } else {
        fields.push(p.ident()?);
        while p.peek() == Some(&Token::Comma) {
            p.pos += 1;
            fields.push(p.ident()?);
        }
    }
    p.expect_keyword("FROM")?;
    let object = p.ident()?;
    let condition = if p.keyword("WHERE") { Some(p.condition()?) } else { None };
    let mut order = Vec::new();
    if p.keyword("ORDER") {
        p.expect_keyword("BY")?;
        loop {
            let field = p.ident()?;
            let descending = if p.keyword("DESC") {
                true
            } else {
                p.keyword("ASC");
                false
            };
            let mut nulls_first = !descending;
            if p.keyword("NULLS") {
                nulls_first = if p.keyword("FIRST") {
                    true
                } else {
                    p.expect_keyword("LAST")?;
                    false
                };
            }
            order.push(OrderKey { field, descending, nulls_first });
            if p.peek() == Some(&Token::Comma) {
                p.pos += 1;
            } else {
                break;
            }
        }
    }
    let number = |p: &mut Parser, what: &str| -> Result<usize, QueryError> {
        match p.next() {
            Some(Token::Num(n)) if n >= 0.0 && n.fract() == 0.0 => Ok(n as usize),
            _ => Err(QueryError(format!("{what} needs a non-negative integer"))),
        }
    };
    let limit = if p.keyword("LIMIT") { Some(number(&mut p, "LIMIT")?) } else { None };
    let offset = if p.keyword("OFFSET") { Some(number(&mut p, "OFFSET")?) } else { None };
    if p.peek().is_some() {
        return Err(p.unexpected("expecting the end of the query"));
    }
    if count && !order.is_empty() {
        // Salesforce: "ORDER BY not supported with COUNT() aggregate function" (MALFORMED_QUERY).
        return Err(QueryError("ORDER BY is not supported with COUNT()".to_owned()));
    }
    Ok(Query { fields, count, object, condition, order, limit, offset })
}

/// A record value viewed for comparison.
#[derive(Debug, Clone, PartialEq)]
enum Comparable {
    Null,
    Text(String),
    Number(f64),
    Bool(bool),
    Instant(DateTime<Utc>),
    Day(NaiveDate),
}

fn comparable(value: &Value) -> Comparable {
    match value {
        Value::Null => Comparable::Null,
        Value::Bool(b) => Comparable::Bool(*b),
        Value::Number(n) => Comparable::Number(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => {
            if let Some(t) = parse_datetime(s) {
                Comparable::Instant(t)
            } else if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                Comparable::Day(d)
            } else {
                Comparable::Text(s.to_lowercase())
            }
        }
        other => Comparable::Text(other.to_string()),
    }
}

fn literal_comparable(lit: &Literal) -> Comparable {
    match lit {
        Literal::Text(s) => Comparable::Text(s.to_lowercase()),
        Literal::Number(n) => Comparable::Number(*n),
        Literal::Bool(b) => Comparable::Bool(*b),
        Literal::Null => Comparable::Null,
        Literal::DateTime(t) => Comparable::Instant(*t),
        Literal::Date(d) => Comparable::Day(*d),
    }
}

fn compare(a: &Comparable, b: &Comparable) -> Option<Ordering> {
    use Comparable::*;
    match (a, b) {
        (Text(x), Text(y)) => Some(x.cmp(y)),
        (Number(x), Number(y)) => x.partial_cmp(y),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (Instant(x), Instant(y)) => Some(x.cmp(y)),
        (Day(x), Day(y)) => Some(x.cmp(y)),
        (Instant(x), Day(y)) => Some(x.date_naive().cmp(y)),
        (Day(x), Instant(y)) => Some(x.cmp(&y.date_naive())),
        // A text field holding something that looks like a number or date compared to text.
        (Text(x), other) | (other, Text(x)) => {
            let y = match other {
                Number(n) => n.to_string(),
                Bool(b) => b.to_string(),
                _ => return None,
            };
            Some(x.cmp(&y))
        }
        _ => None,
    }
}

fn like(value: &str, pattern: &str) -> bool {
    fn matches(v: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some(('%', rest)) => (0..=v.len()).any(|i| matches(&v[i..], rest)),
            Some(('_', rest)) => !v.is_empty() && matches(&v[1..], rest),
            Some((c, rest)) => v.first().is_some_and(|x| x == c) && matches(&v[1..], rest),
        }
    }
    let v: Vec<char> = value.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    matches(&v, &p)
}

impl Condition {
    /// Evaluates against a record; `get` returns a field's value by (canonical) name.
    pub fn eval(&self, get: &dyn Fn(&str) -> Value) -> bool {
        match self {
            Self::And(a, b) => a.eval(get) && b.eval(get),
            Self::Or(a, b) => a.eval(get) || b.eval(get),
            Self::Not(a) => !a.eval(get),
            Self::Like(field, pattern) => get(field).as_str().is_some_and(|v| like(v, pattern)),
            Self::In(field, values, negated) => {
                let v = comparable(&get(field));
                let found = values.iter().any(|l| compare(&v, &literal_comparable(l)) == Some(Ordering::Equal));
                found != *negated
            }
            Self::Compare(field, op, literal) => {
                let v = comparable(&get(field));
                let l = literal_comparable(literal);
                if l == Comparable::Null || v == Comparable::Null {
                    let both_null = l == Comparable::Null && v == Comparable::Null;
                    return match *op {
                        "=" => both_null,
                        "!=" => !both_null,
                        _ => false,
                    };
                }
                match (compare(&v, &l), *op) {
                    (Some(o), "=") => o == Ordering::Equal,
                    (Some(o), "!=") => o != Ordering::Equal,
                    (Some(o), "<") => o == Ordering::Less,
                    (Some(o), "<=") => o != Ordering::Greater,
                    (Some(o), ">") => o == Ordering::Greater,
                    (Some(o), ">=") => o != Ordering::Less,
                    (None, "!=") => true,
                    _ => false,
                }
            }
        }
    }

    /// Every field the condition names.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Self::And(a, b) | Self::Or(a, b) => {
                let mut f = a.fields();
                f.extend(b.fields());
                f
            }
            Self::Not(a) => a.fields(),
            Self::Compare(f, _, _) | Self::In(f, _, _) | Self::Like(f, _) => vec![f.as_str()],
        }
    }
}

/// Orders two records by the keys.
pub fn order(keys: &[OrderKey], a: &dyn Fn(&str) -> Value, b: &dyn Fn(&str) -> Value) -> Ordering {
    for key in keys {
        let (x, y) = (comparable(&a(&key.field)), comparable(&b(&key.field)));
        let ord = match (&x, &y) {
            (Comparable::Null, Comparable::Null) => Ordering::Equal,
            (Comparable::Null, _) => {
                if key.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (_, Comparable::Null) => {
                if key.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            _ => {
                let o = compare(&x, &y).unwrap_or(Ordering::Equal);
                if key.descending { o.reverse() } else { o }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(v: Value) -> impl Fn(&str) -> Value {
        move |f: &str| v.get(f).cloned().unwrap_or(Value::Null)
    }

    #[test]
    fn a_full_query_parses() {
        let q = parse(
            "SELECT Id, Email FROM Contact WHERE SystemModstamp >= 2024-01-01T00:00:00Z AND (Email IN ('a@x.com','b@x.com') OR LastName LIKE 'Sm%') ORDER BY SystemModstamp ASC, Id LIMIT 200 OFFSET 10",
        )
        .unwrap();
        assert_eq!(q.fields, ["Id", "Email"]);
        assert_eq!(q.object, "Contact");
        assert_eq!(q.order.len(), 2);
        assert_eq!((q.limit, q.offset), (Some(200), Some(10)));
    }

    #[test]
    fn both_datetime_literal_forms_filter_alike() {
        let r = record(json!({"SystemModstamp": "2024-01-01T10:00:00.000+0000"}));
        for literal in ["2024-01-01T09:00:00Z", "2024-01-01T09:00:00.000+00:00"] {
            let q = parse(&format!("SELECT Id FROM Contact WHERE SystemModstamp > {literal}")).unwrap();
            assert!(q.condition.unwrap().eval(&r), "{literal}");
        }
        let q = parse("SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01T11:00:00Z").unwrap();
        assert!(!q.condition.unwrap().eval(&r));
    }

    #[test]
    fn text_comparisons_ignore_case_and_like_has_wildcards() {
        let r = record(json!({"Email": "Ann@Example.com", "LastName": "Smith"}));
        let eval = |soql: &str| parse(soql).unwrap().condition.unwrap().eval(&r);
        assert!(eval("SELECT Id FROM Contact WHERE Email = 'ann@example.com'"));
        assert!(eval("SELECT Id FROM Contact WHERE Email IN ('x@y.z', 'ANN@EXAMPLE.COM')"));
        assert!(eval("SELECT Id FROM Contact WHERE LastName LIKE 's_i%'"));
        assert!(eval("SELECT Id FROM Contact WHERE NOT LastName = 'Jones'"));
        assert!(eval("SELECT Id FROM Contact WHERE Title = null AND Email != null"));
        assert!(!eval("SELECT Id FROM Contact WHERE Email NOT IN ('ann@example.com')"));
    }

    #[test]
    fn count_queries_select_no_fields() {
        let q = parse("SELECT COUNT() FROM Contact WHERE SystemModstamp >= 2024-01-01T00:00:00Z").unwrap();
        assert!(q.count && q.fields.is_empty() && q.condition.is_some());
        assert!(!parse("SELECT Id FROM Contact").unwrap().count);
        assert!(parse("SELECT COUNT() FROM Contact ORDER BY Id").is_err());
    }

    #[test]
    fn malformed_queries_say_what_was_unexpected() {
        for bad in [
            "SELECT FROM Contact",
            "SELECT Id Contact",
            "SELECT Id FROM Contact WHERE",
            "SELECT Id FROM Contact LIMIT x",
            "SELECT Id FROM Contact WHERE Name = 'open",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_by_sorts_nulls_first_ascending_and_last_descending() {
        let rows = [json!({"N": 2}), json!({"N": null}), json!({"N": 1})];
        let mut sorted = rows.to_vec();
        let keys = parse("SELECT Id FROM X ORDER BY N").unwrap().order;
        sorted.sort_by(|a, b| order(&keys, &record(a.clone()), &record(b.clone())));
        assert_eq!(sorted, [json!({"N": null}), json!({"N": 1}), json!({"N": 2})]);
        let keys = parse("SELECT Id FROM X ORDER BY N DESC").unwrap().order;
        sorted.sort_by(|a, b| order(&keys, &record(a.clone()), &record(b.clone())));
        assert_eq!(sorted, [json!({"N": 2}), json!({"N": 1}), json!({"N": null})]);
    }
}
