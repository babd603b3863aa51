//! Syntax errors, explained: an unclosed block points at where it was
//! opened (Rhai reports the end of the file), and `#{ for: ... }` says why
//! `for` cannot be a bare key and what to write instead.

use std::sync::Arc;

use rhai::{EvalAltResult, ParseErrorType, Position};

use crate::diagnostic::{Diagnostic, Frame};
use crate::error::Error;

pub fn diagnose(err: ParseErrorType, pos: Position, name: &str, text: &str) -> Diagnostic {
    let mut d = Diagnostic::from_rhai(&EvalAltResult::ErrorParsing(err.clone(), pos), name, None);
    let message = d.error.to_string();
    if let Some((line, column, opener)) = unclosed(text) {
        let closer = match opener {
            '{' => '}',
            '(' => ')',
            _ => ']',
        };
        let at_end = pos.line().is_none_or(|l| l >= text.lines().count());
        if at_end || matches!(&err, ParseErrorType::MissingToken(t, _) if t.starts_with(closer)) {
            d.error = Arc::new(Error::Script {
                message: format!("`{opener}` opened here is never closed: add `{closer}` where it should end ({message})"),
            });
            d.frames = vec![Frame {
                source: name.to_string(),
                line,
                column,
            }];
            return d;
        }
    }
    if for_as_key(text, pos) {
        d.error = Arc::new(Error::Script {
            message: format!(
                "{message}: `for` is a Rhai keyword, so it cannot be a bare map key; quote it (#{{ \"for\": \"condition=Ready\" }}) or use its alias (#{{ wait_for: \"condition=Ready\" }})"
            ),
        });
    }
    d
}

/// Is the error at a `for` written as a map key (`for:` after `#{` or `,`)?
fn for_as_key(text: &str, pos: Position) -> bool {
    let Some(line) = pos.line().and_then(|l| text.lines().nth(l - 1)) else {
        return false;
    };
    let column = pos.position().unwrap_or(1).saturating_sub(1);
    let start = line.char_indices().nth(column).map_or(line.len(), |(i, _)| i);
    // Rhai points at `for` itself or just after it.
    let window = &line[start.saturating_sub(4).min(start)..];
    window.find("for").is_some_and(|i| {
        let before = line[..start.saturating_sub(4) + i].trim_end();
        let after = window[i + 3..].trim_start();
        after.starts_with(':') && (before.ends_with("#{") || before.ends_with(',') || before.is_empty())
    })
}

/// The innermost bracket left open at the end of `text`: (line, column, bracket).
/// Strings, characters and comments are skipped; `${...}` in backtick strings is code.
pub fn unclosed(text: &str) -> Option<(usize, usize, char)> {
    let mut stack: Vec<(usize, usize, char)> = Vec::new();
    let mut mismatch = None;
    // Inside a backtick string at this stack depth (a `${` pushes `$`).
    let mut in_backtick: Vec<usize> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let (mut i, mut line, mut column) = (0, 1, 1);
    let advance = |i: &mut usize, line: &mut usize, column: &mut usize| {
        if chars[*i] == '\n' {
            *line += 1;
            *column = 1;
        } else {
            *column += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if in_backtick.last() == Some(&stack.len()) {
            match (c, next) {
                ('`', _) => {
                    in_backtick.pop();
                }
                ('$', Some('{')) => {
                    stack.push((line, column, '$'));
                    advance(&mut i, &mut line, &mut column);
                }
                _ => {}
            }
            advance(&mut i, &mut line, &mut column);
            continue;
        }
        match (c, next) {
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    advance(&mut i, &mut line, &mut column);
                }
                continue;
            }
            ('/', Some('*')) => {
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    advance(&mut i, &mut line, &mut column);
                }
                advance(&mut i, &mut line, &mut column);
            }
            ('"', _) | ('\'', _) => {
                advance(&mut i, &mut line, &mut column);
                while i < chars.len() && chars[i] != c && chars[i] != '\n' {
                    if chars[i] == '\\' {
                        advance(&mut i, &mut line, &mut column);
                    }
                    if i < chars.len() {
                        advance(&mut i, &mut line, &mut column);
                    }
                }
            }
            ('`', _) => in_backtick.push(stack.len()),
            ('{' | '(' | '[', _) => stack.push((line, column, c)),
            ('}' | ')' | ']', _) => {
                // `}` also ends a `${...}` (back in its backtick string).
                let expected = |open: char| matches!((open, c), ('{' | '$', '}') | ('(', ')') | ('[', ']'));
                match stack.pop() {
                    Some(top) if !expected(top.2) => {
                        // `[1, 2 }`: the `[` is the one left open.
                        mismatch.get_or_insert(top);
                        if stack.last().is_some_and(|t| expected(t.2)) {
                            stack.pop();
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        if i < chars.len() {
            advance(&mut i, &mut line, &mut column);
        }
    }
    mismatch.or_else(|| stack.into_iter().rev().find(|(_, _, c)| *c != '$'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_error(text: &str) -> String {
        let e = rhai::Engine::new().compile(text).unwrap_err();
        let d = diagnose(*e.0, e.1, "p.rhai", text);
        let sources = crate::modules::Sources::default();
        sources.insert("p.rhai", text);
        d.render(&sources)
    }

    #[test]
    fn finds_the_innermost_unclosed_bracket() {
        assert_eq!(unclosed("fn f() {\n  if x {\n    g(\"}\");\n}\n"), Some((1, 8, '{')));
        assert_eq!(unclosed("let a = `x ${b} }`;\nlet m = #{ a: [1, 2 };\n"), Some((2, 15, '[')));
        assert_eq!(unclosed("// {\nlet s = '{'; /* ( */ f(`${ `}` }`)\n"), None);
    }

    #[test]
    fn an_unclosed_block_points_where_it_was_opened() {
        let out = compile_error("let a = 1;\nif a == 1 {\n    print(a);\n\nprint(2);\n");
        assert!(out.contains("`{` opened here is never closed"), "{out}");
        assert!(out.contains("--> p.rhai:2:11"), "{out}");
        assert!(out.contains("2 | if a == 1 {"), "{out}");
    }

    #[test]
    fn for_as_a_key_says_quote_it_or_use_wait_for() {
        let out = compile_error("let cp = 1;\ncp.wait(\"istio/x\", #{ for: \"condition=Ready\" });\n");
        assert!(out.contains("quote it (#{ \"for\": \"condition=Ready\" })"), "{out}");
        assert!(out.contains("wait_for"), "{out}");
        assert!(out.contains("--> p.rhai:2:"), "{out}");
    }
}
