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
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use crate::route::ResourceType;
    use crate::scim::schema::ENTERPRISE_USER_URN;

    fn user() -> &'static ResourceSchema {
        ResourceSchema::for_type(ResourceType::User)
    }

    fn group() -> &'static ResourceSchema {
        ResourceSchema::for_type(ResourceType::Group)
    }

    /// Parses, checks that the canonical form parses back to the same filter, and returns it.
    fn canonical_in(input: &str, schema: &ResourceSchema) -> String {
        let filter = parse_filter(input, schema).unwrap_or_else(|e| panic!("{input}: {}", e.detail));
        let canonical = filter.to_canonical();
        let reparsed = parse_filter(&canonical, schema).unwrap_or_else(|e| panic!("{canonical}: {}", e.detail));
        assert_eq!(reparsed, filter, "{input} -> {canonical}");
        assert_eq!(reparsed.to_canonical(), canonical);
        canonical
    }

    fn canonical(input: &str) -> String {
        canonical_in(input, user())
    }

    fn error(input: &str) -> ScimError {
        let error = parse_filter(input, user()).expect_err(input);
        assert_eq!((error.status, error.scim_type), (400, Some(ScimType::InvalidFilter)), "{input}");
        error
    }

    fn path_error(input: &str) -> ScimError {
        let error = parse_patch_path(input, user()).expect_err(input);
        assert_eq!(error.status, 400);
        error
    }

    fn manager_value() -> String {
        format!("{ENTERPRISE_USER_URN}:manager.value")
    }

    #[test]
    fn entra_filters_are_accepted() {
        for input in [
            r#"userName eq "Test_User_00aa00aa@testuser.com""#,
            r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#,
            r#"id eq "123""#,
        ] {
            assert_eq!(canonical(input), input);
        }
        assert_eq!(canonical_in(r#"displayName eq "Group 1""#, group()), r#"displayName eq "Group 1""#);
        assert_eq!(canonical_in(r#"externalId eq "g-1""#, group()), r#"externalId eq "g-1""#);
        assert_eq!(canonical_in(r#"id eq "9" and members eq "42""#, group()), r#"id eq "9" and members.value eq "42""#);
        assert_eq!(
            canonical(r#"id eq "123" and manager eq "456""#),
            format!(r#"id eq "123" and {} eq "456""#, manager_value())
        );
        assert_eq!(
            canonical(&format!(r#"{ENTERPRISE_USER_URN}:manager eq "x""#)),
            format!(r#"{} eq "x""#, manager_value())
        );
        assert_eq!(canonical(r#"manager.value eq "x""#), format!(r#"{} eq "x""#, manager_value()));
        // Runs of spaces between tokens.
        assert_eq!(canonical(r#"  userName   eq  "a b"  "#), r#"userName eq "a b""#);
    }

    #[test]
    fn rfc7644_figure_2_examples() {
        let same = [
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"title pr"#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"]"#,
            r#"not (userName eq "x")"#,
        ];
        for input in same {
            assert_eq!(canonical(input), input);
        }
        for (input, expected) in [
            (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#, r#"userName sw "J""#),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "O'Malley""#,
                r#"name.familyName co "O'Malley""#,
            ),
            (
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
                r#"userType eq "Employee" and (emails.value co "example.com" or emails.value co "example.org")"#,
            ),
            (
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
                r#"userType ne "Employee" and not (emails.value co "example.com" or emails.value co "example.org")"#,
            ),
            (
                r#"userType eq "Employee" and (emails.type eq "work")"#,
                r#"userType eq "Employee" and emails.type eq "work""#,
            ),
        ] {
            assert_eq!(canonical(input), expected, "{input}");
        }
    }

    #[test]
    fn value_paths_resolve_sub_attributes() {
        let filter = parse_filter(r#"emails[type eq "work"]"#, user()).unwrap();
        let emails = user().resolve("emails").unwrap();
        let work =
            Filter::Compare(user().resolve("emails.type").unwrap(), CompareOp::Eq, CompValue::Str("work".into()));
        assert_eq!(filter, Filter::ValuePath(emails, Box::new(work)));
        assert_eq!(canonical(r#"EMAILS[TYPE EQ "work"]"#), r#"emails[type eq "work"]"#);
        assert_eq!(canonical(r#"addresses[postalCode pr]"#), r#"addresses[postalCode pr]"#);
        assert_eq!(canonical(r#"name[givenName eq "Ada"]"#), r#"name[givenName eq "Ada"]"#);
        assert_eq!(
            canonical(r#"manager[displayName sw "A"]"#),
            format!(r#"{ENTERPRISE_USER_URN}:manager[displayName sw "A"]"#)
        );
        assert_eq!(
            canonical_in(r#"members[value eq "1" or display co "x"]"#, group()),
            r#"members[value eq "1" or display co "x"]"#
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let filter = parse_filter(r#"title pr or userType eq "x" and active eq true"#, user()).unwrap();
        assert!(
            matches!(&filter, Filter::Or(left, right) if matches!(**left, Filter::Present(_)) && matches!(**right, Filter::And(..)))
        );
        let filter = parse_filter(r#"title pr and userType eq "x" or active eq true"#, user()).unwrap();
        assert!(matches!(&filter, Filter::Or(left, _) if matches!(**left, Filter::And(..))));
        let filter = parse_filter(r#"title pr AND nickName pr And locale pr"#, user()).unwrap();
        assert!(
            matches!(&filter, Filter::And(left, right) if matches!(**left, Filter::And(..)) && matches!(**right, Filter::Present(_)))
        );
        let filter = parse_filter(r#"NOT (title pr) and locale pr"#, user()).unwrap();
        assert!(matches!(&filter, Filter::And(left, _) if matches!(**left, Filter::Not(_))));
    }

    #[test]
    fn canonical_form_keeps_only_needed_parentheses() {
        for (input, expected) in [
            ("((title pr))", "title pr"),
            ("(title pr or locale pr) and nickName pr", "(title pr or locale pr) and nickName pr"),
            ("title pr or (locale pr and nickName pr)", "title pr or locale pr and nickName pr"),
            ("(title pr and locale pr) and nickName pr", "title pr and locale pr and nickName pr"),
            ("title pr and (locale pr and nickName pr)", "title pr and (locale pr and nickName pr)"),
            ("title pr or (locale pr or nickName pr)", "title pr or (locale pr or nickName pr)"),
            ("not(not((title pr)))", "not (not (title pr))"),
            ("not (title pr or locale pr) or nickName pr", "not (title pr or locale pr) or nickName pr"),
            (
                "emails[(type eq \"a\" or type eq \"b\") and primary eq TRUE]",
                "emails[(type eq \"a\" or type eq \"b\") and primary eq true]",
            ),
            ("USERNAME Eq \"x\" oR Title PR", "userName eq \"x\" or title pr"),
            ("active EQ False", "active eq false"),
            ("title eq NULL", "title eq null"),
            ("meta.version eq 1.50E+3", "meta.version eq 1.50E+3"),
        ] {
            assert_eq!(canonical(input), expected, "{input}");
        }
    }

    #[test]
    fn strings_are_unescaped_and_written_back_as_json() {
        let filter = parse_filter(r#"userName eq "a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D\uDE00é""#, user()).unwrap();
        let Filter::Compare(_, _, CompValue::Str(value)) = &filter else { panic!("{filter:?}") };
        assert_eq!(value, "a\"b\\c/d\u{8}\u{c}\n\r\té😀é");
        assert_eq!(filter.to_canonical(), format!("userName eq {}", serde_json::to_string(value).unwrap()));
        for s in ["", "plain", "quote\"back\\slash", "\u{1}\u{1f}\u{7f}", "line\nfeed", "ünï😀", "</script>"] {
            let mut ours = String::new();
            write_json_string(&mut ours, s);
            assert_eq!(ours, serde_json::to_string(s).unwrap());
            let input = format!("userName eq {ours}");
            assert_eq!(canonical(&input), input);
        }
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for n in ["0", "-0", "1", "-12", "0.5", "1e10", "1E+2", "-0.0e-5", "123.456"] {
            assert_eq!(canonical(&format!("meta.version eq {n}")), format!("meta.version eq {n}"));
        }
        for n in ["01", "1.", "1e", "1e+", "--1", "1x", "-", "0x10", "1.2.3", "-.5"] {
            let detail = error(&format!("meta.version eq {n}")).detail;
            assert!(detail.contains("invalid number"), "{n}: {detail}");
        }
        for n in ["+1", ".5", "1,0"] {
            error(&format!("meta.version eq {n}"));
        }
    }

    #[test]
    fn unknown_attributes_are_named_and_values_never_shown() {
        for (input, named) in [
            (r#"nope eq "s3cret""#, "'nope'"),
            (r#"name.nope eq "s3cret""#, "'name.nope'"),
            (r#"userName eq "x" or employeeNumbr eq "s3cret""#, "'employeeNumbr'"),
            (r#"emails[nope eq "s3cret"]"#, "no sub-attribute 'nope'"),
            (r#"schemaz eq "s3cret""#, "'schemaz'"),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "s3cret""#,
                "'urn:ietf:params:scim:schemas:core:2.0:Group:displayName'",
            ),
        ] {
            let detail = error(input).detail;
            assert!(detail.contains(named), "{input}: {detail}");
            assert!(!detail.contains("s3cret"), "{input}: {detail}");
        }
        for input in [
            "userName eq s3cret",
            "userName s3cret \"x\"",
            "userName eq \"x\" s3cret",
            "userName eq 's3cret'",
            "title pr \"s3cret\"",
            "active gt \"s3cret\"",
        ] {
            let detail = error(input).detail;
            assert!(!detail.contains("s3cret"), "{input}: {detail}");
        }
        let long = format!("{} pr", "a".repeat(1000));
        assert!(error(&long).detail.len() < 200);
        assert_eq!(parse_filter("members pr", group()).unwrap().to_canonical(), "members pr");
        assert!(parse_filter("userName pr", group()).is_err());
    }

    #[test]
    fn operators_are_checked_against_attribute_types() {
        for input in [
            "title pr \"x\"",
            "title pr true",
            "active gt true",
            "active co \"t\"",
            "x509Certificates.value gt \"AB\"",
            "name eq \"x\"",
            "name pr and name ne null",
            "meta gt \"x\"",
            "emails.primary sw \"t\"",
            "userName co true",
            "userName co 1",
            "userName gt null",
            "meta.created lt false",
        ] {
            error(input);
        }
        for input in [
            "meta.created co \"2011\"",
            "meta.lastModified ge \"2011-05-13T04:42:34Z\"",
            "x509Certificates.value co \"AB\"",
            "profileUrl sw \"https://\"",
            "active eq true",
            "active ne null",
            "userName gt \"m\"",
            "meta.version gt 3",
            "name pr",
            "emails pr",
            "emails.value ew \".org\"",
        ] {
            canonical(input);
        }
        assert!(error("active le true").detail.contains("Boolean"));
    }

    #[test]
    fn syntax_errors_are_invalid_filter() {
        for input in [
            "",
            "   ",
            "userName",
            "userName eq",
            "userName eq \"x\" userName eq \"y\"",
            "userName eq \"x\" and",
            "or title pr",
            "(title pr",
            "title pr)",
            "()",
            "not title pr",
            "not",
            "not [title pr]",
            "emails[type eq \"work\"",
            "emails[type eq \"work\")",
            "emails[]",
            "emails[type eq \"x\"].value eq \"y\"",
            "userName[value eq \"x\"]",
            "name.givenName[value eq \"x\"]",
            "emails[type[value eq \"x\"]]",
            "emails[type eq \"x\" and phoneNumbers[type eq \"y\"]]",
            "title pr and and locale pr",
            "userName = \"x\"",
            "userName eq \"x\" ∧ title pr",
        ] {
            error(input);
        }
        assert!(error("emails[type[value eq \"x\"]]").detail.contains("nest"));
        assert!(error("not title pr").detail.contains("'not'"));
    }

    #[test]
    fn hostile_input_gets_errors_not_panics() {
        // Length is checked before anything else.
        let detail = error(&"(".repeat(100_000)).detail;
        assert!(detail.contains("4096"), "{detail}");
        assert!(error(&"x".repeat(64 * 1024)).detail.contains("MAX_FILTER_LEN"));
        let at_limit = format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN - 14));
        assert_eq!(at_limit.len(), MAX_FILTER_LEN);
        canonical(&at_limit);
        error(&format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN - 13)));

        // Nesting.
        let nested = |n: usize| format!("{}title pr{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(canonical(&nested(MAX_FILTER_DEPTH)), "title pr");
        assert!(error(&nested(MAX_FILTER_DEPTH + 1)).detail.contains("MAX_FILTER_DEPTH"));
        assert!(error(&"(".repeat(4000)).detail.contains("MAX_FILTER_DEPTH"));
        let nots = |n: usize| format!("{}title pr{}", "not (".repeat(n), ")".repeat(n));
        canonical(&nots(MAX_FILTER_DEPTH));
        error(&nots(MAX_FILTER_DEPTH + 1));
        let in_value_path = |n: usize| format!("{}emails[type pr]{}", "(".repeat(n), ")".repeat(n));
        canonical(&in_value_path(MAX_FILTER_DEPTH - 1));
        error(&in_value_path(MAX_FILTER_DEPTH));

        // A long chain within the length limit is parsed in a loop and written back.
        let chain = vec!["title pr"; 300].join(" and ");
        assert_eq!(canonical(&chain), chain);
        let mixed = vec!["(title pr or locale pr)"; 140].join(" and ");
        assert_eq!(canonical(&mixed), mixed);

        // Strings.
        for input in [
            r#"userName eq "unterminated"#,
            r#"userName eq "\"#,
            r#"userName eq "\x""#,
            r#"userName eq "\u12""#,
            r#"userName eq "\u12G4""#,
            r#"userName eq "\ud800""#,
            r#"userName eq "\ud800\u0041""#,
            r#"userName eq "\ud800\n""#,
            r#"userName eq "\udc00""#,
            r#"userName eq "\uDFFF\uD800""#,
            "userName eq \"tab\there\"",
            "userName eq \"nul\u{0}\"",
        ] {
            let detail = error(input).detail;
            assert!(detail.contains("string"), "{input}: {detail}");
        }
    }

    /// A deterministic generator for property tests.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) as usize % n
        }

        fn pick<'x>(&mut self, items: &[&'x str]) -> &'x str {
            items[self.below(items.len())]
        }

        fn keyword(&mut self, word: &str) -> String {
            let spaces = " ".repeat(1 + self.below(2));
            let word = if self.below(3) == 0 { word.to_uppercase() } else { word.to_string() };
            format!("{spaces}{word}{spaces}")
        }
    }

    fn random_filter(rng: &mut Rng, depth: usize) -> String {
        const ATOMS: &[&str] = &[
            r#"userName eq "bjensen""#,
            "title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            "active eq TRUE",
            r#"emails co "example.com""#,
            r#"emails[type eq "work" and value co "@x"]"#,
            r#"emails[not (primary eq false) or (type sw "w")]"#,
            r#"manager eq "m""#,
            "name.familyName ne null",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber le 42",
            r#"x509Certificates.value co "AB""#,
            r#"displayName ew "\u00e9\"""#,
            "meta.version ge -1.5e3",
        ];
        match if depth == 0 { 0 } else { rng.below(5) } {
            0 => rng.pick(ATOMS).to_string(),
            1 => format!("{}{}{}", random_filter(rng, depth - 1), rng.keyword("and"), random_filter(rng, depth - 1)),
            2 => format!("{}{}{}", random_filter(rng, depth - 1), rng.keyword("or"), random_filter(rng, depth - 1)),
            3 => format!("({})", random_filter(rng, depth - 1)),
            _ => format!("{}({})", rng.keyword("not").trim_end(), random_filter(rng, depth - 1)),
        }
    }

    #[test]
    fn canonical_form_round_trips() {
        let mut rng = Rng(7);
        for _ in 0..500 {
            let input = random_filter(&mut rng, 5);
            let once = canonical(&input);
            assert_eq!(canonical(&once), once);
        }
    }

    #[test]
    fn random_token_soup_never_panics() {
        const PIECES: &[&str] = &[
            "(", ")", "[", "]", "not", "and", "or", "pr", "eq", "gt", "\"", "\\", "\\u", "d800", "dc00", "emails",
            "userName", "type", "value", " ", ".", "1", "-", "e", "true", ":", "urn:", "é", "\t", "manager", "name",
        ];
        let mut rng = Rng(42);
        for _ in 0..5000 {
            let input: String = (0..rng.below(30)).map(|_| rng.pick(PIECES)).collect();
            if let Ok(filter) = parse_filter(&input, user()) {
                assert_eq!(parse_filter(&filter.to_canonical(), user()).as_ref(), Ok(&filter), "{input}");
            }
            if let Ok(path) = parse_patch_path(&input, user()) {
                assert_eq!(parse_patch_path(&path.to_canonical(), user()).as_ref(), Ok(&path), "{input}");
            }
        }
    }

    #[test]
    fn unqualified_names_fall_back_to_extensions() {
        let found = resolve_attr(user(), "employeeNumber").unwrap();
        assert_eq!(found.canonical(), format!("{ENTERPRISE_USER_URN}:employeeNumber"));
        assert_eq!(
            resolve_attr(user(), "MANAGER.displayName").unwrap().canonical(),
            format!("{ENTERPRISE_USER_URN}:manager.displayName")
        );
        // Core first: `displayName` is the User's, not the manager's.
        assert_eq!(resolve_attr(user(), "displayName").unwrap().canonical(), "displayName");
        assert_eq!(resolve_attr(user(), "urn:ietf:params:scim:schemas:core:2.0:User:employeeNumber"), None);
        assert_eq!(resolve_attr(user(), "manager.nope"), None);
        assert_eq!(resolve_attr(group(), "employeeNumber"), None);
    }

    #[test]
    fn patch_paths() {
        let urn = ENTERPRISE_USER_URN;
        for (input, expected, target) in [
            ("name.givenName", "name.givenName".to_string(), "givenName"),
            ("emails", "emails".to_string(), "emails"),
            (r#"emails[type eq "work"].value"#, r#"emails[type eq "work"].value"#.to_string(), "value"),
            (r#"EMAILS[Type EQ "work"].VALUE"#, r#"emails[type eq "work"].value"#.to_string(), "value"),
            (
                r#"addresses[type eq "work"].streetAddress"#,
                r#"addresses[type eq "work"].streetAddress"#.to_string(),
                "streetAddress",
            ),
            (
                r#"emails[type eq "work" and primary eq true]"#,
                r#"emails[type eq "work" and primary eq true]"#.to_string(),
                "emails",
            ),
            (&format!("{urn}:employeeNumber"), format!("{urn}:employeeNumber"), "employeeNumber"),
            ("employeeNumber", format!("{urn}:employeeNumber"), "employeeNumber"),
            ("manager", format!("{urn}:manager"), "manager"),
            ("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", "name.familyName".to_string(), "familyName"),
        ] {
            let path = parse_patch_path(input, user()).unwrap_or_else(|e| panic!("{input}: {}", e.detail));
            assert_eq!(path.to_canonical(), expected, "{input}");
            assert_eq!(path.target().name, target, "{input}");
            assert_eq!(parse_patch_path(&expected, user()).unwrap(), path);
        }
        for (input, expected, target) in [
            ("members", "members", "members"),
            (r#"members[value eq "2819c223"]"#, r#"members[value eq "2819c223"]"#, "members"),
            (r#"members[value eq "2819c223"].display"#, r#"members[value eq "2819c223"].display"#, "display"),
            ("displayName", "displayName", "displayName"),
        ] {
            let path = parse_patch_path(input, group()).unwrap();
            assert_eq!(path.to_canonical(), expected);
            assert_eq!(path.target().name, target);
        }
        let path = parse_patch_path(r#"members[value eq "1"]"#, group()).unwrap();
        let members = group().resolve("members").unwrap();
        let PatchPath::Value { attr, sub_attribute: None, .. } = path else { panic!("{path:?}") };
        assert_eq!(attr, members);
    }

    #[test]
    fn patch_path_errors() {
        for (input, scim_type, named) in [
            ("", ScimType::InvalidPath, ""),
            ("nope", ScimType::InvalidPath, "'nope'"),
            ("name.nope", ScimType::InvalidPath, "'name.nope'"),
            (r#"emails[type eq "work"].nope"#, ScimType::InvalidPath, "'nope'"),
            (r#"emails[type eq "work"].value.x"#, ScimType::InvalidPath, "'value.x'"),
            (r#"emails[type eq "work"]x"#, ScimType::InvalidPath, ""),
            (r#"emails[type eq "work"].value extra"#, ScimType::InvalidPath, ""),
            (r#"userName[value eq "x"]"#, ScimType::InvalidPath, "'userName'"),
            ("emails extra", ScimType::InvalidPath, "'['"),
            ("\"emails\"", ScimType::InvalidPath, ""),
            ("emails.", ScimType::InvalidPath, ""),
            (r#"emails[type eq]"#, ScimType::InvalidFilter, ""),
            (r#"emails[nope eq "x"]"#, ScimType::InvalidFilter, "'nope'"),
            (r#"emails[type eq "work""#, ScimType::InvalidFilter, "']'"),
            (r#"emails[type eq "wo"#, ScimType::InvalidFilter, "string"),
            (r#"emails[type[value eq "x"]]"#, ScimType::InvalidFilter, "nest"),
        ] {
            let error = path_error(input);
            assert_eq!(error.scim_type, Some(scim_type), "{input}: {}", error.detail);
            assert!(error.detail.contains(named), "{input}: {}", error.detail);
        }
        assert!(path_error(&"a".repeat(MAX_FILTER_LEN + 1)).detail.contains("MAX_FILTER_LEN"));
        assert!(parse_patch_path("members", user()).is_err());
    }
}
