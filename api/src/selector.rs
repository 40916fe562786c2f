//! Label and field selectors with the grammar, error texts and matching rules of
//! k8s.io/apimachinery (`labels.Parse`, `metav1.LabelSelectorAsSelector`, `fields.ParseSelector`),
//! and the per-kind selectable fields kube-apiserver offers for `fieldSelector`
//! (the field label conversions of `pkg/apis/*/v1/conversion.go` and the registries' `GetAttrs`).

use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;

/// A label or field selector that does not parse or validate; the message is upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

impl From<String> for SelectorError {
    fn from(message: String) -> Self {
        SelectorError(message)
    }
}

// ---------------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------------

/// A label selector operator (k8s.io/apimachinery/pkg/selection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One requirement of a label selector: `key op values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a validated requirement (upstream `labels.NewRequirement`, field paths `key`, `values`).
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        let mut errs: Vec<String> = Vec::new();
        if let Err(msg) = validate_label_key(key) {
            errs.push(invalid("key", &quote(key), &msg));
        }
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(invalid(
                "values",
                &go_string_slice(&values),
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => errs.push(invalid(
                "values",
                &go_string_slice(&values),
                "exact-match compatibility requires one single value",
            )),
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errs.push(invalid(
                "values",
                &go_string_slice(&values),
                "values set must be empty for exists and does not exist",
            )),
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(invalid(
                        "values",
                        &go_string_slice(&values),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(invalid(
                            &format!("values[{i}]"),
                            &quote(v),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            if let Err(msg) = validate_label_value(v) {
                errs.push(invalid(&format!("values[{i}][{key}]"), &quote(v), &msg));
            }
        }
        if errs.is_empty() {
            Ok(Requirement { key: key.to_string(), operator, values })
        } else {
            Err(aggregate(errs).into())
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether the labels satisfy this requirement (upstream `Requirement.Matches`).
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let found = labels.and_then(|l| l.get(&self.key)).map(|v| v.as_str().unwrap_or(""));
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => found.is_some_and(has),
            Operator::NotIn | Operator::NotEquals => !found.is_some_and(has),
            Operator::Exists => found.is_some(),
            Operator::DoesNotExist => found.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(actual) = found.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in (",
            Operator::NotIn => " notin (",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        f.write_str(&sorted.join(","))?;
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: the AND of its requirements, kept sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// The selector of a null `metav1.LabelSelector`: matches nothing.
    nothing: bool,
}

impl LabelSelector {
    /// Parses the string form (`labelSelector` query parameter) with upstream's grammar.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = Parser::new(s).parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements, nothing: false })
    }

    /// The selector that matches every object.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The selector that matches no object (a null `metav1.LabelSelector`).
    pub fn nothing() -> Self {
        LabelSelector { requirements: Vec::new(), nothing: true }
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that matches nothing.
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether an object with these labels (`metadata.labels`) is selected.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// From a `metav1.LabelSelector` JSON object (`{matchLabels, matchExpressions}`), as upstream's
    /// `LabelSelectorAsSelector`: null selects nothing, an empty object selects everything.
    pub fn from_json(sel: &Value) -> Result<Self, SelectorError> {
        let obj = match sel {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(o) => o,
            other => return Err(format!("label selector must be an object, not {other}").into()),
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    let Some(v) = v.as_str() else {
                        return Err(format!("matchLabels[{k}] must be a string").into());
                    };
                    requirements.push(Requirement::new(k, Operator::Equals, vec![v.to_string()])?);
                }
            }
            Some(_) => return Err("matchLabels must be an object".to_string().into()),
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for expr in exprs {
                    requirements.push(expression_requirement(expr)?);
                }
            }
            Some(_) => return Err("matchExpressions must be a list".to_string().into()),
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements, nothing: false })
    }
}

fn expression_requirement(expr: &Value) -> Result<Requirement, SelectorError> {
    let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
    let op = expr.get("operator").and_then(Value::as_str).unwrap_or("");
    let operator = match op {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        other => return Err(format!("{} is not a valid label selector operator", quote(other)).into()),
    };
    let values = match expr.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(vs)) => {
            let mut out = Vec::with_capacity(vs.len());
            for v in vs {
                match v.as_str() {
                    Some(s) => out.push(s.to_string()),
                    None => return Err(format!("values of {key} must be strings").into()),
                }
            }
            out
        }
        Some(_) => return Err(format!("values of {key} must be a list").into()),
    };
    Requirement::new(key, operator, values)
}

impl fmt::Display for LabelSelector {
    /// The canonical form upstream's `Selector.String()` gives (requirements sorted by key,
    /// set values sorted), e.g. `app=web,tier in (a,b)`. The nothing-selector prints as "".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

// --- lexer and parser (labels/selector.go) ---------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// The text between two byte offsets; both are always at ASCII boundaries.
    fn slice(&self, start: usize, end: usize) -> &'a str {
        self.s.get(start..end).unwrap_or("")
    }

    fn lex(&mut self) -> (Tok, String) {
        while self.peek().is_some_and(is_whitespace) {
            self.pos += 1;
        }
        match self.peek() {
            None => (Tok::EndOfString, String::new()),
            Some(b) if is_special(b) => self.scan_special(),
            Some(_) => self.scan_identifier(),
        }
    }

    fn scan_identifier(&mut self) -> (Tok, String) {
        let start = self.pos;
        while self.peek().is_some_and(|b| !is_special(b) && !is_whitespace(b)) {
            self.pos += 1;
        }
        let lit = self.slice(start, self.pos);
        match keyword(lit) {
            Some(tok) => (tok, lit.to_string()),
            None => (Tok::Identifier, lit.to_string()),
        }
    }

    /// Longest run of special symbols that still forms an operator (`!=`, `==`, `=`, ...).
    fn scan_special(&mut self) -> (Tok, String) {
        let start = self.pos;
        let mut last: Option<(Tok, usize)> = None;
        while let Some(b) = self.peek() {
            if !is_special(b) {
                break;
            }
            let candidate = self.slice(start, self.pos + 1);
            if let Some(tok) = keyword(candidate) {
                last = Some((tok, self.pos + 1));
            } else if last.is_some() {
                break;
            }
            self.pos += 1;
        }
        match last {
            Some((tok, end)) => {
                self.pos = end;
                (tok, self.slice(start, end).to_string())
            }
            None => (Tok::Error, format!("error expected: keyword found '{}'", self.slice(start, self.pos))),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Tok, String)>,
    position: usize,
}

impl Parser {
    fn new(s: &str) -> Self {
        let mut lexer = Lexer { s, pos: 0 };
        let mut items = Vec::new();
        loop {
            let (tok, lit) = lexer.lex();
            items.push((tok, lit));
            if tok == Tok::EndOfString {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        let (tok, lit) = self.items.get(self.position).cloned().unwrap_or((Tok::EndOfString, String::new()));
        (Self::in_context(tok, ctx), lit)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let item = self.lookahead(ctx);
        self.position += 1;
        item
    }

    fn in_context(tok: Tok, ctx: Ctx) -> Tok {
        match (ctx, tok) {
            (Ctx::Values, Tok::In | Tok::NotIn) => Tok::Identifier,
            _ => tok,
        }
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self.parse_requirement().map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::EndOfString => return Ok(requirements),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(format!("found '{l2}', expected: identifier after ','"));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::EndOfString => return Ok(requirements),
                _ => return Err(format!("found '{lit}', expected: !, identifier, or 'end of string'")),
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return Requirement::new(&key, op, Vec::new()).map_err(|e| e.0);
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, op, values.into_iter().collect()).map_err(|e| e.0)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Tok::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        if let Err(msg) = validate_label_key(&lit) {
            return Err(invalid("<nil>", &quote(&lit), &msg));
        }
        let (next, _) = self.lookahead(Ctx::Values);
        if (next == Tok::EndOfString || next == Tok::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Tok::In => Operator::In,
            Tok::Equals => Operator::Equals,
            Tok::DoubleEquals => Operator::DoubleEquals,
            Tok::GreaterThan => Operator::GreaterThan,
            Tok::LessThan => Operator::LessThan,
            Tok::NotIn => Operator::NotIn,
            Tok::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{lit}', expected: in, notin, =, ==, !=, gt, lt")),
        })
    }

    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let set = self.parse_identifiers_list()?;
                let (closing, _) = self.consume(Ctx::Values);
                if closing != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(set)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut set = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    set.insert(lit);
                    let (next, next_lit) = self.lookahead(Ctx::Values);
                    match next {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{next_lit}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (next, _) = self.lookahead(Ctx::Values);
                    if next == Tok::ClosedPar {
                        set.insert(String::new());
                        return Ok(set);
                    }
                    if next == Tok::Comma {
                        set.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        let (next, _) = self.lookahead(Ctx::Values);
        if next == Tok::EndOfString || next == Tok::Comma {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Identifier {
            Ok(BTreeSet::from([lit]))
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

// --- validation (util/validation) ----------------------------------------------------------

/// Upstream `IsQualifiedName`, the rule for label keys.
fn validate_label_key(key: &str) -> Result<(), String> {
    joined(crate::validation::qualified_name(key))
}

/// Upstream `IsValidLabelValue`.
fn validate_label_value(v: &str) -> Result<(), String> {
    joined(crate::validation::label_value(v))
}

fn joined(errs: Vec<String>) -> Result<(), String> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

/// `field.Invalid(path, value, detail).Error()`.
fn invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {value}: {detail}")
}

/// Go's `%q` for the strings selectors carry.
fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// Go's `%#v` of a `[]string`.
fn go_string_slice(values: &[String]) -> String {
    let inner: Vec<String> = values.iter().map(|v| quote(v)).collect();
    format!("[]string{{{}}}", inner.join(", "))
}

/// `field.ErrorList.ToAggregate().Error()`: one message as is, several deduplicated in brackets.
fn aggregate(errs: Vec<String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    equal: bool,
    value: String,
}

/// A parsed field selector: the AND of `field=value`, `field==value` and `field!=value` terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter as upstream's `fields.ParseSelector`
    /// (no whitespace trimming; `\,`, `\=` and `\\` escapes in values).
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, op, rhs)) = split_term(part) else {
                return Err(format!("invalid selector: '{s}'; can't understand '{part}'").into());
            };
            let value = unescape_value(rhs)?;
            terms.push(FieldTerm { field: field.to_string(), equal: op != "!=", value });
        }
        Ok(FieldSelector { terms })
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms as `(field, equal, value)`; `equal` is false for `!=`.
    pub fn requirements(&self) -> impl Iterator<Item = (&str, bool, &str)> {
        self.terms.iter().map(|t| (t.field.as_str(), t.equal, t.value.as_str()))
    }

    /// Whether an object matches; `get` gives the object's value of a field (a field the kind
    /// does not have counts as "", like upstream's `fields.Set.Get`).
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|t| {
            let actual = get(&t.field).unwrap_or_default();
            (actual == t.value) == t.equal
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.equal { "=" } else { "!=" };
            write!(f, "{}{}{}", t.field, op, escape_value(&t.value))?;
        }
        Ok(())
    }
}

/// Splits on commas not escaped by a backslash (the backslash stays in the term).
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(s.get(start..i).unwrap_or(""));
            start = i + 1;
        }
    }
    terms.push(s.get(start..).unwrap_or(""));
    terms
}

/// The first `!=`, `==` or `=` splits a term into field and (still escaped) value.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = term.get(i..).unwrap_or("");
        for op in ["!=", "==", "="] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((term.get(..i).unwrap_or(""), op, value));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => return Err(format!("invalid field selector: invalid escape sequence: \\{other}")),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(format!("invalid field selector: unescaped character in value: {c}")),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=")
}

// ---------------------------------------------------------------------------------------------
// Selectable fields per kind
// ---------------------------------------------------------------------------------------------

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = obj;
    for p in path {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

fn int_at(obj: &Value, path: &[&str]) -> i64 {
    let mut cur = obj;
    for p in path {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return 0,
        }
    }
    cur.as_i64().unwrap_or(0)
}

fn bool_at(obj: &Value, path: &[&str]) -> bool {
    let mut cur = obj;
    for p in path {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return false,
        }
    }
    cur.as_bool().unwrap_or(false)
}

fn owned(s: &str) -> Option<String> {
    Some(s.to_string())
}

/// The field-selector value of `field` on an object of `kind`, or None when the kind does not
/// support the field (the server answers 400 `field label not supported: <field>`).
/// Missing values read as upstream's zero values ("", "0", "false").
pub fn field_value(kind: &str, obj: &Value, field: &str) -> Option<String> {
    let name = || owned(str_at(obj, &["metadata", "name"]));
    let namespace = || owned(str_at(obj, &["metadata", "namespace"]));
    match (kind, field) {
        (_, "metadata.name") => name(),
        ("Node" | "Namespace", "metadata.namespace") => None,
        (_, "metadata.namespace") => namespace(),
        ("Pod", _) => pod_field(obj, field),
        ("Event", _) => event_field(obj, field),
        ("Secret", "type") => owned(str_at(obj, &["type"])),
        ("Node", "spec.unschedulable") => Some(bool_at(obj, &["spec", "unschedulable"]).to_string()),
        ("Namespace", "status.phase") => owned(str_at(obj, &["status", "phase"])),
        ("Service", "spec.clusterIP") => owned(str_at(obj, &["spec", "clusterIP"])),
        ("Service", "spec.type") => owned(str_at(obj, &["spec", "type"])),
        ("Job", "status.successful") => Some(int_at(obj, &["status", "succeeded"]).to_string()),
        ("ReplicaSet", "status.replicas") => Some(int_at(obj, &["status", "replicas"]).to_string()),
        _ => None,
    }
}

fn pod_field(obj: &Value, field: &str) -> Option<String> {
    let spec = |k: &str| owned(str_at(obj, &["spec", k]));
    match field {
        "spec.nodeName" | "spec.host" => spec("nodeName"),
        "spec.restartPolicy" => spec("restartPolicy"),
        "spec.schedulerName" => spec("schedulerName"),
        "spec.serviceAccountName" => {
            let sa = str_at(obj, &["spec", "serviceAccountName"]);
            if sa.is_empty() {
                spec("serviceAccount")
            } else {
                owned(sa)
            }
        }
        "spec.hostNetwork" => Some(bool_at(obj, &["spec", "hostNetwork"]).to_string()),
        "status.phase" => owned(str_at(obj, &["status", "phase"])),
        "status.podIP" => {
            let ip = str_at(obj, &["status", "podIP"]);
            if ip.is_empty() {
                let first = obj.pointer("/status/podIPs/0/ip").and_then(Value::as_str).unwrap_or("");
                owned(first)
            } else {
                owned(ip)
            }
        }
        // Accepted by the conversion but absent from the pod's field set: always "".
        "status.podIPs" => owned(""),
        "status.nominatedNodeName" => owned(str_at(obj, &["status", "nominatedNodeName"])),
        _ => None,
    }
}

fn event_field(obj: &Value, field: &str) -> Option<String> {
    if let Some(sub) = field.strip_prefix("involvedObject.") {
        return match sub {
            "kind" | "namespace" | "name" | "uid" | "apiVersion" | "resourceVersion" | "fieldPath" => {
                owned(str_at(obj, &["involvedObject", sub]))
            }
            _ => None,
        };
    }
    match field {
        "reason" => owned(str_at(obj, &["reason"])),
        "reportingComponent" => owned(str_at(obj, &["reportingComponent"])),
        "source" => {
            let component = str_at(obj, &["source", "component"]);
            if component.is_empty() {
                owned(str_at(obj, &["reportingComponent"]))
            } else {
                owned(component)
            }
        }
        "type" => owned(str_at(obj, &["type"])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn label_parse_canonical_forms() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("x=a", "x=a"),
            ("x==a", "x==a"),
            ("x!=a", "x!=a"),
            ("  x  =  a  ", "x=a"),
            ("x=a,y!=b", "x=a,y!=b"),
            ("y!=b,x=a", "x=a,y!=b"),
            ("x in (b,a,a)", "x in (a,b)"),
            ("x notin (a)", "x notin (a)"),
            ("x in ()", "x in ()"),
            ("x in (,a)", "x in (,a)"),
            ("x in (a,)", "x in (,a)"),
            ("x in (a,,b)", "x in (,a,b)"),
            ("x", "x"),
            ("!x", "!x"),
            ("! x", "!x"),
            ("x=", "x="),
            ("x=,z", "x=,z"),
            ("x>1", "x>1"),
            ("x<1", "x<1"),
            ("example.com/app=web", "example.com/app=web"),
            ("in in (in)", "in in (in)"),
            ("x in (notin)", "x in (notin)"),
            ("a.b-c_d=E.f-G_h", "a.b-c_d=E.f-G_h"),
            ("x\t=\ty", "x=y"),
        ];
        for (input, want) in cases {
            let sel = LabelSelector::parse(input);
            assert_eq!(sel.as_ref().map(|s| s.to_string()).ok().as_deref(), Some(*want), "{input}: {sel:?}");
        }
    }

    #[test]
    fn label_parse_errors() {
        let name_regex = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        let cases: Vec<(&str, String)> = vec![
            ("x=a b", "found 'b', expected: ',' or 'end of string'".into()),
            ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt".into()),
            ("x=a,", "found '', expected: identifier after ','".into()),
            (",x", "found ',', expected: !, identifier, or 'end of string'".into()),
            ("=a", "found '=', expected: !, identifier, or 'end of string'".into()),
            ("x in a", "unable to parse requirement: found 'a' expected: '('".into()),
            ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'".into()),
            ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'".into()),
            ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier".into()),
            ("x==(", "unable to parse requirement: found '(', expected: identifier".into()),
            ("!=a", "found '!=', expected: !, identifier, or 'end of string'".into()),
            ("!,x", "unable to parse requirement: found ',', expected: identifier".into()),
            ("!x=a", "found '=', expected: ',' or 'end of string'".into()),
            ("x>a", "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".into()),
            ("a@b=c", format!("unable to parse requirement: <nil>: Invalid value: \"a@b\": {name_regex}")),
            ("/a=c", "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be non-empty".into()),
            ("a/b/c", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into()),
            ("Example.com/a", "unable to parse requirement: <nil>: Invalid value: \"Example.com/a\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into()),
            ("x=a_", "unable to parse requirement: values[0][x]: Invalid value: \"a_\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into()),
        ];
        for (input, want) in cases {
            assert_eq!(LabelSelector::parse(input), Err(SelectorError(want)), "{input}");
        }
        let long = format!("{}=a", "k".repeat(64));
        let err = LabelSelector::parse(&long).err().map(|e| e.0).unwrap_or_default();
        assert!(err.contains("name part must be no more than 63 characters"), "{err}");
    }

    #[test]
    fn label_matching() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("missing in (web)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("n>4", true),
            ("n>5", false),
            ("n<6", true),
            ("app>1", false),
            ("missing=", false),
        ];
        for (input, want) in cases {
            let sel = LabelSelector::parse(input);
            assert_eq!(sel.map(|s| s.matches(Some(&l))), Ok(*want), "{input}");
        }
        let sel = LabelSelector::parse("!app,x notin (a)").ok();
        assert_eq!(sel.map(|s| s.matches(None)), Some(true));
        assert!(LabelSelector::everything().matches(None));
        assert!(LabelSelector::everything().is_empty());
        assert!(!LabelSelector::nothing().matches(Some(&l)));
        assert!(!LabelSelector::nothing().is_empty());
    }

    #[test]
    fn label_from_json() {
        let cases: Vec<(Value, Result<&str, &str>)> = vec![
            (json!({}), Ok("")),
            (json!({"matchLabels": {"tier": "a", "app": "web"}}), Ok("app=web,tier=a")),
            (
                json!({"matchLabels": {"app": "web"}, "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["b", "a"]},
                    {"key": "env", "operator": "NotIn", "values": ["prod"]},
                    {"key": "gpu", "operator": "Exists"},
                    {"key": "old", "operator": "DoesNotExist", "values": []}
                ]}),
                Ok("app=web,env notin (prod),gpu,!old,tier in (a,b)"),
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]}),
                Err("\"Foo\" is not a valid label selector operator"),
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
                Err("values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"),
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
                Err("values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"),
            ),
        ];
        for (input, want) in cases {
            let got = LabelSelector::from_json(&input).map(|s| s.to_string());
            assert_eq!(got.as_deref().map_err(|e| e.0.as_str()), want, "{input}");
        }
        assert_eq!(LabelSelector::from_json(&Value::Null).map(|s| s.matches_nothing()), Ok(true));
        let sel = LabelSelector::from_json(&json!({"matchLabels": {"app": "web"}}));
        let l = labels(json!({"app": "web"}));
        assert_eq!(sel.map(|s| s.matches(Some(&l))), Ok(true));
    }

    #[test]
    fn field_parse() {
        type Terms = &'static [(&'static str, bool, &'static str)];
        let cases: &[(&str, Result<Terms, &str>)] = &[
            ("", Ok(&[])),
            ("metadata.name=x", Ok(&[("metadata.name", true, "x")])),
            ("metadata.name==x", Ok(&[("metadata.name", true, "x")])),
            ("metadata.name!=x", Ok(&[("metadata.name", false, "x")])),
            ("b=1,a=2", Ok(&[("a", true, "2"), ("b", true, "1")])),
            ("a=", Ok(&[("a", true, "")])),
            ("a=x\\,y", Ok(&[("a", true, "x,y")])),
            ("a=x\\=y", Ok(&[("a", true, "x=y")])),
            ("a=x\\\\y", Ok(&[("a", true, "x\\y")])),
            ("a=1,,b=2", Ok(&[("a", true, "1"), ("b", true, "2")])),
            ("a", Err("invalid selector: 'a'; can't understand 'a'")),
            ("a=1,b", Err("invalid selector: 'a=1,b'; can't understand 'b'")),
            ("a==b=c", Err("invalid field selector: unescaped character in value: =")),
            ("a=x\\y", Err("invalid field selector: invalid escape sequence: \\y")),
            ("a=x\\", Err("invalid field selector: invalid escape sequence: \\")),
        ];
        for (input, want) in cases {
            let got = FieldSelector::parse(input)
                .map(|sel| sel.requirements().map(|(f, e, v)| (f.to_string(), e, v.to_string())).collect::<Vec<_>>());
            let want = want
                .map(|terms| terms.iter().map(|(f, e, v)| (f.to_string(), *e, v.to_string())).collect::<Vec<_>>())
                .map_err(|e| SelectorError(e.to_string()));
            assert_eq!(got, want, "{input}");
        }
        assert_eq!(FieldSelector::parse("a=x\\,y").map(|s| s.to_string()), Ok("a=x\\,y".to_string()));
    }

    #[test]
    fn field_matching() {
        let pod = json!({"metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}]}});
        let get = |f: &str| field_value("Pod", &pod, f);
        let cases: &[(&str, bool)] = &[
            ("metadata.name=web-1", true),
            ("metadata.name=web-2", false),
            ("metadata.name!=web-2,metadata.namespace=default", true),
            ("spec.nodeName=n1,status.phase=Running", true),
            ("spec.nodeName=", false),
            ("status.podIP=10.0.0.5", true),
            ("spec.hostNetwork=false", true),
            ("status.nominatedNodeName=", true),
            ("", true),
        ];
        for (input, want) in cases {
            assert_eq!(FieldSelector::parse(input).map(|s| s.matches(&get)), Ok(*want), "{input}");
        }
    }

    #[test]
    fn field_values_per_kind() {
        let event = json!({"metadata": {"name": "e", "namespace": "ns"}, "reason": "Pulled", "type": "Normal",
            "involvedObject": {"kind": "Pod", "name": "p", "uid": "u1"}, "reportingComponent": "kubelet"});
        let node = json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}});
        let cases: Vec<(&str, &Value, &str, Option<&str>)> = vec![
            ("Event", &event, "involvedObject.kind", Some("Pod")),
            ("Event", &event, "involvedObject.uid", Some("u1")),
            ("Event", &event, "involvedObject.namespace", Some("")),
            ("Event", &event, "source", Some("kubelet")),
            ("Event", &event, "reason", Some("Pulled")),
            ("Event", &event, "involvedObject.bogus", None),
            ("Event", &event, "spec.nodeName", None),
            ("Node", &node, "spec.unschedulable", Some("true")),
            ("Node", &node, "metadata.name", Some("n1")),
            ("Node", &node, "metadata.namespace", None),
            ("Namespace", &node, "status.phase", Some("")),
            ("Secret", &event, "type", Some("Normal")),
            ("Job", &event, "status.successful", Some("0")),
            ("ReplicaSet", &event, "status.replicas", Some("0")),
            ("Service", &event, "spec.clusterIP", Some("")),
            ("Deployment", &event, "metadata.namespace", Some("ns")),
            ("Deployment", &event, "status.replicas", None),
            ("ConfigMap", &event, "data", None),
        ];
        for (kind, obj, field, want) in cases {
            assert_eq!(field_value(kind, obj, field).as_deref(), want, "{kind} {field}");
        }
    }
}
