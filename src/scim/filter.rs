//! SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (RFC 7644 §3.5.2), parsed against a
//! resource's schemas and written back in one canonical form.
//!
//! The parser is a small lexer under a recursive-descent parser. It recurses only into
//! parentheses, `not (...)` and value paths, at most [`MAX_FILTER_DEPTH`] deep; `and`/`or` chains
//! are built in a loop. With the input capped at [`MAX_FILTER_LEN`] bytes, hostile input costs
//! linear time and bounded stack. Error details name attribute paths and positions, never a
//! compared value.

use crate::scim::schema::{AttrRef, AttrType, Attribute, ResourceSchema};
use crate::scim_error::{shown, ScimError, ScimType};

/// Longest filter (or PATCH path) accepted, in bytes of the decoded text.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parenthesised groups, `not (...)` and value paths accepted.
pub const MAX_FILTER_DEPTH: usize = 16;

/// The attribute operators of RFC 7644 §3.4.2.2, Table 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Lt,
    Ge,
    Le,
}

const OPERATORS: [(&str, CompareOp); 9] = [
    ("eq", CompareOp::Eq),
    ("ne", CompareOp::Ne),
    ("co", CompareOp::Co),
    ("sw", CompareOp::Sw),
    ("ew", CompareOp::Ew),
    ("gt", CompareOp::Gt),
    ("lt", CompareOp::Lt),
    ("ge", CompareOp::Ge),
    ("le", CompareOp::Le),
];

impl CompareOp {
    /// Operators are case-insensitive (RFC 7644 §3.4.2.2).
    pub fn parse(word: &str) -> Option<CompareOp> {
        OPERATORS.iter().find(|(name, _)| name.eq_ignore_ascii_case(word)).map(|&(_, op)| op)
    }

    pub fn as_str(self) -> &'static str {
        OPERATORS.iter().find(|&&(_, op)| op == self).map_or("", |(name, _)| name)
    }

    fn is_ordering(self) -> bool {
        matches!(self, CompareOp::Gt | CompareOp::Lt | CompareOp::Ge | CompareOp::Le)
    }

    fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

/// A `compValue` (RFC 7644 §3.4.2.2, Figure 1): a JSON literal.
#[derive(Clone, Debug, PartialEq)]
pub enum CompValue {
    False,
    Null,
    True,
    /// The JSON number as written (checked against the RFC 8259 §6 grammar).
    Number(String),
    /// The string, unescaped.
    Str(String),
}

impl CompValue {
    fn write(&self, out: &mut String) {
        match self {
            CompValue::False => out.push_str("false"),
            CompValue::Null => out.push_str("null"),
            CompValue::True => out.push_str("true"),
            CompValue::Number(n) => out.push_str(n),
            CompValue::Str(s) => write_json_string(out, s),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Present(AttrRef),
    Compare(AttrRef, CompareOp, CompValue),
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    /// `emails[type eq "work"]`: the AttrRef is the multi-valued complex attribute; the inner
    /// filter's AttrRefs are that attribute's sub-attributes (AttrRef with sub_attribute set).
    ValuePath(AttrRef, Box<Filter>),
}

impl Filter {
    /// The canonical text: canonical attribute paths, lower-case keywords, single spaces, strings
    /// as JSON strings, numbers as written, and parentheses only where the tree needs them.
    /// Parsing it gives back an equal filter.
    pub fn to_canonical(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, false);
        out
    }

    /// Binding strength: `or` < `and` < everything else (RFC 7644 §3.4.2.2, Table 5).
    fn precedence(&self) -> u8 {
        match self {
            Filter::Or(..) => 1,
            Filter::And(..) => 2,
            _ => 3,
        }
    }

    fn write(&self, out: &mut String, in_value_path: bool) {
        match self {
            Filter::Present(attr) => {
                write_path(out, attr, in_value_path);
                out.push_str(" pr");
            }
            Filter::Compare(attr, op, value) => {
                write_path(out, attr, in_value_path);
                out.push(' ');
                out.push_str(op.as_str());
                out.push(' ');
                value.write(out);
            }
            Filter::Not(inner) => {
                out.push_str("not (");
                inner.write(out, in_value_path);
                out.push(')');
            }
            Filter::And(left, right) => self.write_binary(out, left, " and ", right, in_value_path),
            Filter::Or(left, right) => self.write_binary(out, left, " or ", right, in_value_path),
            Filter::ValuePath(attr, inner) => {
                out.push_str(&attr.canonical());
                out.push('[');
                inner.write(out, true);
                out.push(']');
            }
        }
    }

    /// Chains parse left-associatively, so a right operand of the same precedence keeps its
    /// parentheses and a left one does not need them.
    fn write_binary(&self, out: &mut String, left: &Filter, op: &str, right: &Filter, in_value_path: bool) {
        let own = self.precedence();
        write_operand(out, left, left.precedence() < own, in_value_path);
        out.push_str(op);
        write_operand(out, right, right.precedence() <= own, in_value_path);
    }
}

fn write_operand(out: &mut String, filter: &Filter, parenthesise: bool, in_value_path: bool) {
    if parenthesise {
        out.push('(');
    }
    filter.write(out, in_value_path);
    if parenthesise {
        out.push(')');
    }
}

/// Inside a value path the attributes are the outer attribute's sub-attributes, written bare.
fn write_path(out: &mut String, attr: &AttrRef, in_value_path: bool) {
    if in_value_path {
        out.push_str(attr.target().name);
    } else {
        out.push_str(&attr.canonical());
    }
}

/// A JSON string (RFC 8259 §7) with the escapes serde_json uses.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A PATCH operation's `path` (RFC 7644 §3.5.2: `PATH = attrPath / valuePath [subAttr]`).
#[derive(Clone, Debug, PartialEq)]
pub enum PatchPath {
    Attr(AttrRef),
    Value { attr: AttrRef, filter: Filter, sub_attribute: Option<&'static Attribute> },
}

impl PatchPath {
    pub fn to_canonical(&self) -> String {
        match self {
            PatchPath::Attr(attr) => attr.canonical(),
            PatchPath::Value { attr, filter, sub_attribute } => {
                let mut out = attr.canonical();
                out.push('[');
                filter.write(&mut out, true);
                out.push(']');
                if let Some(sub) = sub_attribute {
                    out.push('.');
                    out.push_str(sub.name);
                }
                out
            }
        }
    }

    /// The attribute the operation applies to: the sub-attribute if the path names one.
    pub fn target(&self) -> &'static Attribute {
        match self {
            PatchPath::Attr(attr) => attr.target(),
            PatchPath::Value { attr, sub_attribute, .. } => sub_attribute.unwrap_or(attr.attribute),
        }
    }
}

/// Resolves an attribute path (RFC 7644 §3.10). A URN-qualified path must name its schema; an
/// unqualified one is looked up in the core schema and the common attributes first and then, as
/// RFC 7644 §3.10 leaves to the service provider, in the resource's extension schemas in order
/// (so Entra's bare `manager` is the enterprise extension's).
pub fn resolve_attr(schema: &ResourceSchema, path: &str) -> Option<AttrRef> {
    if let Some(found) = schema.resolve(path) {
        return Some(found);
    }
    if path.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
        return None;
    }
    let (name, sub) = match path.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (path, None),
    };
    schema.extensions.iter().find_map(|&ext| {
        let attribute = ext.attribute(name)?;
        let sub_attribute = match sub {
            Some(sub) => Some(attribute.sub_attribute(sub)?),
            None => None,
        };
        Some(AttrRef { schema: Some(ext), attribute, sub_attribute })
    })
}

/// Parses a filter (RFC 7644 §3.4.2.2). Errors are 400 `invalidFilter`.
pub fn parse_filter(input: &str, schema: &ResourceSchema) -> Result<Filter, ScimError> {
    let mut parser = Parser::new(input, schema, ScimType::InvalidFilter)?;
    if input.trim().is_empty() {
        return Err(parser.error(format_args!("the filter is empty")));
    }
    let filter = parser.or_chain(None)?;
    parser.expect_end("'and', 'or' or the end of the filter")?;
    Ok(filter)
}

/// Parses a PATCH path (RFC 7644 §3.5.2). Errors in the attribute path are 400 `invalidPath`;
/// errors inside a value path's brackets are 400 `invalidFilter`, the `scimType` RFC 7644 §3.12
/// (Table 9) gives for a PATCH path filter.
pub fn parse_patch_path(input: &str, schema: &ResourceSchema) -> Result<PatchPath, ScimError> {
    let mut parser = Parser::new(input, schema, ScimType::InvalidPath)?;
    let (at, token) = parser.next()?;
    let Token::Word(path) = token else {
        return Err(parser.error(format_args!("expected an attribute path at offset {at}")));
    };
    let attr = parser.resolve(path, None)?;
    match parser.next()? {
        (_, Token::End) => Ok(PatchPath::Attr(attr)),
        (_, Token::OpenBracket) => {
            parser.check_value_path(&attr)?;
            parser.kind = ScimType::InvalidFilter;
            let filter = parser.value_filter(attr)?;
            parser.kind = ScimType::InvalidPath;
            let sub_attribute = match parser.next()? {
                (_, Token::End) => None,
                (at, Token::Word(word)) => {
                    let name = word.strip_prefix('.').ok_or_else(|| parser.after_value_path(at))?;
                    let sub = attr.attribute.sub_attribute(name).ok_or_else(|| {
                        parser.error(format_args!("'{}' has no sub-attribute '{}'", attr.canonical(), shown(name)))
                    })?;
                    parser.expect_end("the end of the path")?;
                    Some(sub)
                }
                (at, _) => return Err(parser.after_value_path(at)),
            };
            Ok(PatchPath::Value { attr, filter, sub_attribute })
        }
        (at, _) => Err(parser.error(format_args!("expected '[' or the end of the path at offset {at}"))),
    }
}

/// An attribute path as shown in an error detail: client text, so bounded.

#[derive(Debug, PartialEq)]
enum Token<'a> {
    /// An attribute path, operator or keyword: `[A-Za-z$._][A-Za-z0-9$._:-]*`.
    Word(&'a str),
    Number(&'a str),
    Str(String),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    End,
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    peeked: Option<(usize, Token<'a>)>,
    schema: &'a ResourceSchema,
    /// The `scimType` errors carry.
    kind: ScimType,
    in_patch_path: bool,
    depth: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'$' | b'.' | b'_' | b':' | b'-')
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, schema: &'a ResourceSchema, kind: ScimType) -> Result<Self, ScimError> {
        let in_patch_path = kind == ScimType::InvalidPath;
        let parser = Parser { src, pos: 0, peeked: None, schema, kind, in_patch_path, depth: 0 };
        if src.len() > MAX_FILTER_LEN {
            return Err(parser.error(format_args!("longer than {MAX_FILTER_LEN} bytes (MAX_FILTER_LEN)")));
        }
        Ok(parser)
    }

    fn error(&self, detail: std::fmt::Arguments) -> ScimError {
        let what = match (self.kind, self.in_patch_path) {
            (ScimType::InvalidPath, _) => "Invalid PATCH path",
            (_, true) => "Invalid filter in PATCH path",
            _ => "Invalid filter",
        };
        ScimError::bad_request(self.kind, format!("{what}: {detail}"))
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.src.as_bytes().get(at).copied()
    }

    /// The byte offset just past the run starting at `from` of bytes that satisfy `f`.
    fn run_end(&self, from: usize, f: impl Fn(u8) -> bool) -> usize {
        let rest = self.src.as_bytes().get(from..).unwrap_or_default();
        from + rest.iter().take_while(|&&b| f(b)).count()
    }

    fn lex(&mut self) -> Result<(usize, Token<'a>), ScimError> {
        // RFC 7644 asks for single spaces between tokens; any run of whitespace is accepted.
        let start = self.run_end(self.pos, |b| b.is_ascii_whitespace());
        self.pos = start + 1;
        let token = match self.byte(start) {
            None => {
                self.pos = start;
                Token::End
            }
            Some(b'(') => Token::Open,
            Some(b')') => Token::Close,
            Some(b'[') => Token::OpenBracket,
            Some(b']') => Token::CloseBracket,
            Some(b'"') => self.string(start)?,
            Some(b) if b.is_ascii_digit() || b == b'-' => {
                self.pos = self.run_end(start, |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'));
                let number = self.src.get(start..self.pos).unwrap_or_default();
                if !is_json_number(number) {
                    return Err(self.error(format_args!("invalid number at offset {start}")));
                }
                Token::Number(number)
            }
            Some(b) if b.is_ascii_alphabetic() || matches!(b, b'$' | b'.' | b'_') => {
                self.pos = self.run_end(start, is_word_byte);
                Token::Word(self.src.get(start..self.pos).unwrap_or_default())
            }
            Some(_) => return Err(self.error(format_args!("unexpected character at offset {start}"))),
        };
        Ok((start, token))
    }

    /// A JSON string (RFC 8259 §7) starting at the quote at `start`, unescaped.
    fn string(&mut self, start: usize) -> Result<Token<'a>, ScimError> {
        let body = start + 1;
        let mut chars = self.src.get(body..).unwrap_or_default().char_indices();
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = body + i + 1;
                    return Ok(Token::Str(out));
                }
                '\\' => {
                    let bad = || self.error(format_args!("invalid escape in the string at offset {}", body + i));
                    let unescaped = match chars.next().map(|(_, c)| c) {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('/') => '/',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('u') => {
                            let high = hex4(&mut chars).ok_or_else(bad)?;
                            let code = if (0xD800..0xDC00).contains(&high) {
                                // RFC 8259 §7: a character outside the BMP is a surrogate pair.
                                let low = match (chars.next(), chars.next()) {
                                    (Some((_, '\\')), Some((_, 'u'))) => hex4(&mut chars).ok_or_else(bad)?,
                                    _ => 0,
                                };
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(
                                        self.error(format_args!("lone surrogate in the string at offset {}", body + i))
                                    );
                                }
                                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                high
                            };
                            char::from_u32(code).ok_or_else(|| {
                                self.error(format_args!("lone surrogate in the string at offset {}", body + i))
                            })?
                        }
                        _ => return Err(bad()),
                    };
                    out.push(unescaped);
                }
                c if u32::from(c) < 0x20 => {
                    return Err(
                        self.error(format_args!("unescaped control character in the string at offset {}", body + i))
                    )
                }
                c => out.push(c),
            }
        }
        Err(self.error(format_args!("unterminated string starting at offset {start}")))
    }

    fn next(&mut self) -> Result<(usize, Token<'a>), ScimError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lex(),
        }
    }

    fn peek(&mut self) -> Result<&Token<'a>, ScimError> {
        let token = self.next()?;
        Ok(&self.peeked.insert(token).1)
    }

    /// Consumes the next token if it is the (case-insensitive) keyword.
    fn eat_keyword(&mut self, keyword: &str) -> Result<bool, ScimError> {
        let found = matches!(self.peek()?, Token::Word(w) if w.eq_ignore_ascii_case(keyword));
        if found {
            self.peeked = None;
        }
        Ok(found)
    }

    fn expect_end(&mut self, expected: &str) -> Result<(), ScimError> {
        match self.next()? {
            (_, Token::End) => Ok(()),
            (at, Token::Close) => Err(self.error(format_args!("unbalanced ')' at offset {at}"))),
            (at, _) => Err(self.error(format_args!("expected {expected} at offset {at}"))),
        }
    }

    fn after_value_path(&self, at: usize) -> ScimError {
        self.error(format_args!("expected '.' and a sub-attribute, or the end of the path, at offset {at}"))
    }

    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(self.error(format_args!("nested deeper than {MAX_FILTER_DEPTH} levels (MAX_FILTER_DEPTH)")));
        }
        Ok(())
    }

    /// `filter "or" filter`: `or` binds loosest (RFC 7644 §3.4.2.2, Table 5).
    fn or_chain(&mut self, outer: Option<AttrRef>) -> Result<Filter, ScimError> {
        let mut filter = self.and_chain(outer)?;
        while self.eat_keyword("or")? {
            filter = Filter::Or(Box::new(filter), Box::new(self.and_chain(outer)?));
        }
        Ok(filter)
    }

    fn and_chain(&mut self, outer: Option<AttrRef>) -> Result<Filter, ScimError> {
        let mut filter = self.operand(outer)?;
        while self.eat_keyword("and")? {
            filter = Filter::And(Box::new(filter), Box::new(self.operand(outer)?));
        }
        Ok(filter)
    }

    /// A parenthesised group, `not (...)`, or an attribute expression. `outer` is the attribute
    /// of the value path being parsed, if any.
    fn operand(&mut self, outer: Option<AttrRef>) -> Result<Filter, ScimError> {
        match self.next()? {
            (_, Token::Open) => self.group(outer),
            (at, Token::Word(w)) if w.eq_ignore_ascii_case("not") => match self.next()? {
                (_, Token::Open) => Ok(Filter::Not(Box::new(self.group(outer)?))),
                _ => Err(self.error(format_args!("'not' at offset {at} must be followed by a filter in parentheses"))),
            },
            (_, Token::Word(path)) => self.attribute_expression(path, outer),
            (_, Token::End) => {
                Err(self.error(format_args!("expected an attribute path, '(' or 'not' at the end of the filter")))
            }
            (at, _) => Err(self.error(format_args!("expected an attribute path, '(' or 'not' at offset {at}"))),
        }
    }

    /// The rest of a group whose `(` has been read.
    fn group(&mut self, outer: Option<AttrRef>) -> Result<Filter, ScimError> {
        self.enter()?;
        let filter = self.or_chain(outer)?;
        match self.next()? {
            (_, Token::Close) => {}
            (_, Token::End) => return Err(self.error(format_args!("missing ')' at the end of the filter"))),
            (at, _) => return Err(self.error(format_args!("expected 'and', 'or' or ')' at offset {at}"))),
        }
        self.depth -= 1;
        Ok(filter)
    }

    fn resolve(&self, path: &str, outer: Option<AttrRef>) -> Result<AttrRef, ScimError> {
        match outer {
            None => resolve_attr(self.schema, path)
                .ok_or_else(|| self.error(format_args!("unknown attribute '{}'", shown(path)))),
            Some(outer) => match outer.attribute.sub_attribute(path) {
                Some(sub) => Ok(AttrRef { sub_attribute: Some(sub), ..outer }),
                None => Err(self.error(format_args!("'{}' has no sub-attribute '{}'", outer.canonical(), shown(path)))),
            },
        }
    }

    /// RFC 7644 §3.4.2.2: `valuePath = attrPath "[" valFilter "]"`, on a multi-valued or complex
    /// attribute.
    fn check_value_path(&self, attr: &AttrRef) -> Result<(), ScimError> {
        if attr.sub_attribute.is_none() && (attr.attribute.multi_valued || attr.attribute.is_complex()) {
            Ok(())
        } else {
            Err(self
                .error(format_args!("'{}' is not multi-valued or complex: it takes no value filter", attr.canonical())))
        }
    }

    /// The rest of a value path whose `[` has been read.
    fn value_filter(&mut self, attr: AttrRef) -> Result<Filter, ScimError> {
        self.enter()?;
        let filter = self.or_chain(Some(attr))?;
        match self.next()? {
            (_, Token::CloseBracket) => {}
            (_, Token::End) => {
                return Err(self.error(format_args!("missing ']' after the filter on '{}'", attr.canonical())))
            }
            (at, _) => return Err(self.error(format_args!("expected 'and', 'or' or ']' at offset {at}"))),
        }
        self.depth -= 1;
        Ok(filter)
    }

    /// `attrPath "pr"`, `attrPath compareOp compValue` or `attrPath "[" valFilter "]"`.
    fn attribute_expression(&mut self, path: &'a str, outer: Option<AttrRef>) -> Result<Filter, ScimError> {
        let attr = self.resolve(path, outer)?;
        let expected_operator = |p: &Self, at| {
            p.error(format_args!("expected 'pr' or a comparison operator after '{}' at offset {at}", shown(path)))
        };
        match self.next()? {
            (_, Token::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                if is_value(self.peek()?) {
                    return Err(self.error(format_args!("'pr' takes no value (after '{}')", shown(path))));
                }
                Ok(Filter::Present(attr))
            }
            (at, Token::Word(w)) => match CompareOp::parse(w) {
                Some(op) => {
                    let value = self.comp_value(op)?;
                    self.comparison(attr, op, value)
                }
                None => Err(expected_operator(self, at)),
            },
            (_, Token::OpenBracket) => {
                if outer.is_some() {
                    return Err(self.error(format_args!("value paths may not nest ('{}')", shown(path))));
                }
                self.check_value_path(&attr)?;
                Ok(Filter::ValuePath(attr, Box::new(self.value_filter(attr)?)))
            }
            (at, _) => Err(expected_operator(self, at)),
        }
    }

    /// `compValue = false / null / true / number / string` (keywords in any case).
    fn comp_value(&mut self, op: CompareOp) -> Result<CompValue, ScimError> {
        let (at, token) = self.next()?;
        let value = match token {
            Token::Str(s) => Some(CompValue::Str(s)),
            Token::Number(n) => Some(CompValue::Number(n.to_string())),
            Token::Word(w) if w.eq_ignore_ascii_case("true") => Some(CompValue::True),
            Token::Word(w) if w.eq_ignore_ascii_case("false") => Some(CompValue::False),
            Token::Word(w) if w.eq_ignore_ascii_case("null") => Some(CompValue::Null),
            _ => None,
        };
        value.ok_or_else(|| {
            self.error(format_args!(
                "expected a value (a JSON string, number, true, false or null) after '{}' at offset {at}",
                op.as_str()
            ))
        })
    }

    /// Checks an operator against the attribute's type (RFC 7644 §3.4.2.2, Table 3).
    fn comparison(&self, attr: AttrRef, op: CompareOp, value: CompValue) -> Result<Filter, ScimError> {
        // RFC 7644 §3.4.2.2 compares simple values. A complex attribute with a `value`
        // sub-attribute (`manager`, and the multi-valued attributes of RFC 7643 §2.4) is compared
        // through it, as RFC 7644 §3.4.2.2's own example `emails co "example.com"` and Entra's
        // `manager eq "..."` expect: `emails co "x"` means `emails.value co "x"`.
        let attr = match (attr.sub_attribute, attr.attribute.is_complex()) {
            (None, true) => match attr.attribute.sub_attribute("value") {
                Some(value) => AttrRef { sub_attribute: Some(value), ..attr },
                None => {
                    return Err(self
                        .error(format_args!("'{}' is complex: compare one of its sub-attributes", attr.canonical())))
                }
            },
            _ => attr,
        };
        let ty = attr.target().ty;
        let type_allows = if op.is_ordering() {
            !matches!(ty, AttrType::Boolean | AttrType::Binary | AttrType::Complex)
        } else if op.is_substring() {
            matches!(ty, AttrType::String | AttrType::Reference | AttrType::Binary | AttrType::DateTime | AttrType::Any)
        } else {
            ty != AttrType::Complex
        };
        if !type_allows {
            return Err(self.error(format_args!(
                "'{}' is not supported on {ty:?} attribute '{}'",
                op.as_str(),
                attr.canonical()
            )));
        }
        // Substrings are of strings; an order needs a string or number (RFC 7644 §3.4.2.2).
        let value_allows = match value {
            CompValue::Str(_) => true,
            CompValue::Number(_) => !op.is_substring(),
            CompValue::True | CompValue::False | CompValue::Null => !op.is_substring() && !op.is_ordering(),
        };
        if !value_allows {
            return Err(self.error(format_args!(
                "'{}' on '{}' needs a {}",
                op.as_str(),
                attr.canonical(),
                if op.is_substring() { "string" } else { "string or number" }
            )));
        }
        Ok(Filter::Compare(attr, op, value))
    }
}

fn is_value(token: &Token<'_>) -> bool {
    match token {
        Token::Str(_) | Token::Number(_) => true,
        Token::Word(w) => ["true", "false", "null"].iter().any(|k| w.eq_ignore_ascii_case(k)),
        _ => false,
    }
}

/// Four hex digits of a `\u` escape.
fn hex4(chars: &mut std::str::CharIndices<'_>) -> Option<u32> {
    (0..4).try_fold(0, |acc, _| Some(acc * 16 + chars.next()?.1.to_digit(16)?))
}

/// RFC 8259 §6: `[ "-" ] ( "0" / [1-9] *DIGIT ) [ "." 1*DIGIT ] [ ("e" / "E") [ "+" / "-" ] 1*DIGIT ]`.
fn is_json_number(s: &str) -> bool {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let s = s.strip_prefix('-').unwrap_or(s);
    let int = digits(s);
    if int == 0 || (int > 1 && s.starts_with('0')) {
        return false;
    }
    let mut rest = s.get(int..).unwrap_or_default();
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = fraction.get(n..).unwrap_or_default();
    }
    if let Some(exponent) = rest.strip_prefix(['e', 'E']) {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        let n = digits(exponent);
        if n == 0 {
            return false;
        }
        rest = exponent.get(n..).unwrap_or_default();
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests;
