//! The parser of kubectl's JSONPath templates, a line-by-line port of client-go's
//! `util/jsonpath/parser.go`, quirks included: kubectl users depend on them.

use super::go_unquote::unquote;

/// A template: literal text and `{...}` actions, in order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Segment {
    Text(String),
    Action(Vec<Node>),
}

/// One step of an action, applied to the values the previous step produced.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    /// A quoted string (`{"\n"}`): yields itself whatever the input.
    Text(String),
    /// `.name`; an empty name (`{.}`) matches nothing.
    Field(String),
    /// `range`, `end`, or an unknown word (an error only when evaluated, as in kubectl).
    Identifier(String),
    /// `[i]`, `[start:end:step]`, `[*]`.
    Array([SliceParam; 3]),
    Filter {
        left: Vec<Node>,
        operator: String,
        right: Vec<Node>,
    },
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `.*`
    Wildcard,
    /// `..`
    Recursive,
    /// `[0,2]`, `['a','b']`
    Union(Vec<Vec<Node>>),
}

/// A bound of `[start:end:step]`; `derived` marks the end of a plain index (`[i]` is `[i:i+1]`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct SliceParam {
    pub value: i64,
    pub known: bool,
    pub derived: bool,
}

/// Why a template does not parse, at which character, and what would have fitted.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ParseError {
    pub message: String,
    pub expected: &'static str,
    pub at: usize,
}

/// The operator characters of a filter; the comparison splits at the first run of them.
const OPERATOR_CHARS: &[char] = &['!', '<', '>', '='];

pub(super) fn parse(template: &str) -> Result<Vec<Segment>, ParseError> {
    let mut parser = Parser {
        input: template.chars().collect(),
        pos: 0,
        start: 0,
        segments: Vec::new(),
    };
    parser.parse_text()?;
    Ok(parser.segments)
}

/// Parses the inside of one action, as client-go's `parseAction` does for unions,
/// `['key']` and the two sides of a filter: by wrapping it in braces.
fn parse_action(text: &str, at: usize) -> Result<Vec<Node>, ParseError> {
    let segments = parse(&format!("{{{text}}}")).map_err(|e| ParseError { at, ..e })?;
    match segments.into_iter().next() {
        Some(Segment::Action(nodes)) => Ok(nodes),
        _ => Ok(Vec::new()),
    }
}

struct Parser {
    input: Vec<char>,
    pos: usize,
    start: usize,
    segments: Vec<Segment>,
}

impl Parser {
    fn next(&mut self) -> Option<char> {
        let c = self.input.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn peek(&self) -> Option<char> {
        self.input.get(self.pos).copied()
    }

    fn rest_starts_with(&self, prefix: &str) -> bool {
        prefix.chars().enumerate().all(|(i, c)| self.input.get(self.pos + i) == Some(&c))
    }

    fn consume_text(&mut self) -> String {
        let text = self.input[self.start..self.pos].iter().collect();
        self.start = self.pos;
        text
    }

    fn error(&self, message: impl Into<String>, expected: &'static str) -> ParseError {
        ParseError {
            message: message.into(),
            expected,
            at: self.pos,
        }
    }

    fn parse_text(&mut self) -> Result<(), ParseError> {
        while self.pos < self.input.len() {
            if self.rest_starts_with("{") {
                if self.pos > self.start {
                    let text = self.consume_text();
                    self.segments.push(Segment::Text(text));
                }
                self.pos += 1;
                self.consume_text();
                let nodes = self.parse_action_nodes()?;
                self.segments.push(Segment::Action(nodes));
                continue;
            }
            self.pos += 1;
        }
        if self.pos > self.start {
            let text = self.consume_text();
            self.segments.push(Segment::Text(text));
        }
        Ok(())
    }

    /// Everything up to the closing `}`, which it consumes.
    fn parse_action_nodes(&mut self) -> Result<Vec<Node>, ParseError> {
        let mut nodes = Vec::new();
        loop {
            if self.rest_starts_with("}") {
                self.pos += 1;
                self.consume_text();
                return Ok(nodes);
            }
            if self.rest_starts_with("[?(") {
                nodes.push(self.parse_filter()?);
                continue;
            }
            if self.rest_starts_with("..") {
                if nodes.last() == Some(&Node::Recursive) {
                    return Err(self.error("invalid multiple recursive descent", "a field name after `..`"));
                }
                self.pos += 2;
                self.consume_text();
                nodes.push(Node::Recursive);
                if self.peek().is_some_and(is_alphanumeric) {
                    nodes.push(self.parse_field());
                }
                continue;
            }
            let at = self.pos;
            match self.next() {
                None | Some('\r' | '\n') => return Err(self.error("unclosed action", "`}`")),
                Some(' ' | '@' | '$') => {
                    self.consume_text();
                }
                Some('[') => nodes.extend(self.parse_array()?),
                Some(quote @ ('"' | '\'')) => nodes.push(self.parse_quote(quote)?),
                Some('.') => {
                    self.consume_text();
                    nodes.push(self.parse_field());
                }
                Some(c) if c == '+' || c == '-' || c.is_ascii_digit() => nodes.push(self.parse_number()?),
                Some(c) if is_alphanumeric(c) => {
                    let word = self.scan_to_terminator();
                    nodes.push(match word.as_str() {
                        "true" => Node::Bool(true),
                        "false" => Node::Bool(false),
                        _ => Node::Identifier(word),
                    });
                }
                Some(c) => {
                    // Go's `%#U` shows the character itself only when it is printable.
                    let shown = if c.is_control() { String::new() } else { format!(" '{c}'") };
                    return Err(ParseError {
                        message: format!("unrecognized character in action: U+{:04X}{shown}", c as u32),
                        expected: "`.field`, `[...]`, `..`, a quoted string, a number, `range`, `end` or `}`",
                        at,
                    });
                }
            }
        }
    }

    fn scan_to_terminator(&mut self) -> String {
        while self.peek().is_some_and(|c| !is_terminator(c)) {
            self.pos += 1;
        }
        self.consume_text()
    }

    /// A field name runs to the next unescaped terminator; `\.` keeps a dot in the
    /// name (`networking\.istio\.io/cluster`), and every backslash is then dropped.
    fn parse_field(&mut self) -> Node {
        while let Some(c) = self.peek() {
            if c == '\\' {
                self.pos = (self.pos + 2).min(self.input.len());
            } else if is_terminator(c) {
                break;
            } else {
                self.pos += 1;
            }
        }
        let name = self.consume_text();
        if name == "*" {
            Node::Wildcard
        } else {
            Node::Field(name.replace('\\', ""))
        }
    }

    fn parse_number(&mut self) -> Result<Node, ParseError> {
        // The sign or first digit is already consumed.
        while self.peek().is_some_and(|c| c == '.' || c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text = self.consume_text();
        if let Ok(int) = text.parse::<i64>() {
            Ok(Node::Int(int))
        } else if let Ok(float) = text.parse::<f64>() {
            Ok(Node::Float(float))
        } else {
            Err(self.error(format!("cannot parse number {text}"), "a number"))
        }
    }

    /// `[...]` up to the first `]`: a union if it has a comma (no quoting is
    /// honoured), `['key']`, else a slice. Returns several nodes for `['a.b']`,
    /// which kubectl parses as `.a.b`.
    fn parse_array(&mut self) -> Result<Vec<Node>, ParseError> {
        let at = self.pos - 1;
        loop {
            match self.next() {
                None | Some('\n') => return Err(self.error("unterminated array", "`]`")),
                Some(']') => break,
                Some(_) => {}
            }
        }
        let text = self.consume_text();
        let inner = &text[1..text.len() - 1];
        let inner = if inner == "*" { ":" } else { inner };
        if inner.contains(',') {
            let members = inner
                .split(',')
                .map(|part| parse_action(&format!("[{}]", part.trim_matches(' ')), at));
            return Ok(vec![Node::Union(members.collect::<Result<_, _>>()?)]);
        }
        if let Some(key) = inner
            .strip_prefix('\'')
            .and_then(|k| k.strip_suffix('\''))
            .filter(|k| !k.contains('\''))
        {
            return parse_action(&format!(".{key}"), at);
        }
        let invalid = |message: String| ParseError {
            message,
            expected: "an index, a slice `start:end:step`, `*`, `'key'` or a comma-separated union",
            at,
        };
        let parts: Vec<&str> = inner.split(':').collect();
        let is_int_like = |p: &&str| p.strip_prefix('-').unwrap_or(p).chars().all(|c| c.is_ascii_digit());
        if parts.len() > 3 || !parts.iter().all(is_int_like) {
            return Err(invalid(format!("invalid array index {inner}")));
        }
        let mut params = [SliceParam::default(); 3];
        for i in 0..3 {
            match parts.get(i) {
                Some(&"") => {}
                Some(part) => {
                    let value = part.parse().map_err(|_| invalid(format!("array index {part} is not a number")))?;
                    params[i] = SliceParam {
                        value,
                        known: true,
                        derived: false,
                    };
                }
                // No `:end` at all: `[i]` means `[i:i+1]`.
                None if i == 1 => {
                    params[1] = SliceParam {
                        value: params[0].value + 1,
                        known: true,
                        derived: true,
                    }
                }
                None => {}
            }
        }
        Ok(vec![Node::Array(params)])
    }

    /// `[?(left op right)]` or `[?(path)]` for existence. The closing `)` is the
    /// first one outside the single quoted string the filter may hold.
    fn parse_filter(&mut self) -> Result<Node, ParseError> {
        let at = self.pos;
        self.pos += 3;
        self.consume_text();
        let (mut begun, mut ended, mut pair) = (false, false, '"');
        loop {
            match self.next() {
                None | Some('\n') => return Err(self.error("unterminated filter", "`)]`")),
                Some(quote @ ('"' | '\'')) if !begun => (begun, pair) = (true, quote),
                Some(quote @ ('"' | '\'')) => {
                    if self.input[self.pos - 2] != '\\' && quote == pair {
                        ended = true;
                    }
                }
                Some(')') if begun == ended => break,
                Some(_) => {}
            }
        }
        if self.next() != Some(']') {
            return Err(self.error("unclosed array expect ]", "`]` after `)`"));
        }
        let text = self.consume_text();
        let text = &text[..text.len() - 2];
        Ok(match split_comparison(text) {
            Some((left, operator, right)) => Node::Filter {
                left: parse_action(left, at)?,
                operator: operator.to_string(),
                right: parse_action(right, at)?,
            },
            None => Node::Filter {
                left: parse_action(text, at)?,
                operator: "exists".into(),
                right: Vec::new(),
            },
        })
    }

    fn parse_quote(&mut self, quote: char) -> Result<Node, ParseError> {
        loop {
            match self.next() {
                None | Some('\n') => {
                    return Err(self.error("unterminated quoted string", "a closing quote"));
                }
                Some(c) if c == quote && self.input[self.pos - 2] != '\\' => break,
                Some(_) => {}
            }
        }
        let text = self.consume_text();
        unquote(&text)
            .map(Node::Text)
            .ok_or_else(|| self.error(format!("unquote string {text} error invalid syntax"), "a valid escape sequence"))
    }
}

/// client-go's regex `^([^!<>=]+)([!<>=]+)(.+?)$`.
fn split_comparison(text: &str) -> Option<(&str, &str, &str)> {
    let op_start = text.find(OPERATOR_CHARS).filter(|&i| i > 0)?;
    let op_len = text[op_start..]
        .find(|c| !OPERATOR_CHARS.contains(&c))
        .unwrap_or(text.len() - op_start);
    // The right side needs at least one character: it takes one back from the operator.
    let op_len = if op_start + op_len == text.len() {
        op_len.checked_sub(1).filter(|&n| n > 0)?
    } else {
        op_len
    };
    Some((&text[..op_start], &text[op_start..op_start + op_len], &text[op_start + op_len..]))
}

fn is_terminator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}')
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}
