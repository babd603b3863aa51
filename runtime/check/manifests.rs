//! Literal manifests: a backtick string passed to `apply`, or one with a
//! top-level `apiVersion:`/`kind:` line (a template a function returns), must
//! be YAML. Each `${...}` becomes a placeholder of the same width (a line
//! that is only an interpolation inserts unknown YAML: it becomes a comment),
//! so an error's line and column are the playbook's own.

use rhai::{ASTNode, Expr, Position};

use super::{Finding, Script};
use crate::error::Error;

pub fn check(script: &Script, out: &mut Vec<Finding>) {
    script.ast.walk(&mut |path: &[ASTNode]| {
        let Some(ASTNode::Expr(e @ (Expr::StringConstant(_, pos) | Expr::InterpolatedString(_, pos)))) = path.last() else {
            return true;
        };
        // The pieces of an interpolated string are visited too: only whole strings count.
        if let Some(ASTNode::Expr(Expr::InterpolatedString(..))) = path.iter().rev().nth(1) {
            return true;
        }
        let Some(start) = offset(&script.text, *pos) else { return true };
        let Some(raw) = backtick_body(&script.text[start..]) else {
            return true;
        };
        let yaml = with_placeholders(raw);
        if !(applied(path, e) || looks_like_manifest(&yaml)) {
            return true;
        }
        if let Err(Error::Yaml {
            document,
            line,
            column,
            message,
            ..
        }) = crate::manifest::parse(&yaml, &script.name)
        {
            let (first_line, first_column) = (pos.line().unwrap_or(1), pos.position().unwrap_or(1));
            let at = if line == 1 {
                (first_line, first_column + column)
            } else {
                (first_line + line - 1, column)
            };
            out.push(Finding {
                source: script.name.clone(),
                at: Some(at),
                message: format!("this manifest is not valid YAML (document {document}): {}", without_place(&message)),
                kind: super::Kind::Script,
            });
        }
        true
    });
}

/// The parser's message without its own "error: line 6 column 11: " (lines of
/// the string, not of the playbook; the frame shows the playbook's).
fn without_place(message: &str) -> &str {
    match message.strip_prefix("error: line ") {
        Some(rest) => rest.split_once(": ").map_or(message, |(_, m)| m),
        None => message,
    }
}

/// Is `e` the first argument of an `apply` call?
fn applied(path: &[ASTNode], e: &Expr) -> bool {
    match path.iter().rev().nth(1) {
        Some(ASTNode::Expr(Expr::FnCall(call, _) | Expr::MethodCall(call, _))) => {
            call.name == "apply" && call.args.first().is_some_and(|a| a.position() == e.position())
        }
        Some(ASTNode::Stmt(rhai::Stmt::FnCall(call, _))) => {
            call.name == "apply" && call.args.first().is_some_and(|a| a.position() == e.position())
        }
        _ => false,
    }
}

fn looks_like_manifest(yaml: &str) -> bool {
    yaml.lines().any(|l| l.starts_with("apiVersion:") || l.starts_with("kind:"))
}

/// Byte offset of a 1-based (line, column in characters) position.
fn offset(text: &str, pos: Position) -> Option<usize> {
    let (line, column) = (pos.line()?, pos.position()?);
    let line_start: usize = text.split_inclusive('\n').take(line - 1).map(str::len).sum();
    let rest = text.get(line_start..)?;
    Some(line_start + rest.char_indices().nth(column - 1)?.0)
}

/// What is between a backtick at the start of `text` and its closing one
/// (`${...}` may hold backticks of its own).
fn backtick_body(text: &str) -> Option<&str> {
    let body = text.strip_prefix('`')?;
    let mut depth = 0usize;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '$' if depth == 0 && chars.peek().is_some_and(|(_, n)| *n == '{') => {
                chars.next();
                depth = 1;
            }
            '{' if depth > 0 => depth += 1,
            '}' if depth > 0 => depth -= 1,
            '`' if depth == 0 => return Some(&body[..i]),
            _ => {}
        }
    }
    None
}

/// Each `${...}` as `x`s of its width; a line that is only one becomes a comment.
fn with_placeholders(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for line in raw.split_inclusive('\n') {
        let (content, newline) = line.strip_suffix('\n').map_or((line, ""), |c| (c, "\n"));
        let replaced = replace_interpolations(content);
        let trimmed = content.trim();
        if trimmed.starts_with("${") && replace_interpolations(trimmed).chars().all(|c| c == 'x') {
            let indent = content.len() - content.trim_start().len();
            out.push_str(&content[..indent]);
            out.push('#');
            out.push_str(&replaced[indent + 1..]);
        } else {
            out.push_str(&replaced);
        }
        out.push_str(newline);
    }
    out
}

fn replace_interpolations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if depth == 0 && c == '$' && chars.peek() == Some(&'{') {
            chars.next();
            out.push_str("xx");
            depth = 1;
            continue;
        }
        if depth > 0 {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            out.push('x');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolations_become_placeholders_of_their_width() {
        let raw = "\nmetadata:\n  name: ${ns}-x\n  ${extra}\nspec: {a: `${f(`x`)}`}\n";
        let yaml = with_placeholders(raw);
        assert_eq!(yaml, "\nmetadata:\n  name: xxxxx-x\n  #xxxxxxx\nspec: {a: `xxxxxxxxx`}\n");
        assert_eq!(
            raw.lines().map(str::len).collect::<Vec<_>>(),
            yaml.lines().map(str::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_body_ends_at_the_closing_backtick() {
        assert_eq!(backtick_body("`a ${b(`c`)} d` + x"), Some("a ${b(`c`)} d"));
        assert_eq!(backtick_body("`open"), None);
        assert_eq!(backtick_body("\"no\""), None);
    }

    #[test]
    fn offsets_count_characters() {
        let text = "ab\nçd `x`\n";
        assert_eq!(&text[offset(text, Position::new(2, 4)).unwrap()..], "`x`\n");
    }
}
