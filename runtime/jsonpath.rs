//! kubectl's JSONPath template dialect (`kubectl get -o jsonpath=...`,
//! `kubectl wait --for=jsonpath=...`), printing byte for byte what kubectl prints.
//!
//! No crate implements this dialect: it is client-go's own (`util/jsonpath`), with
//! `{range}{end}`, quoted text, and quirks such as `['a.b']` meaning `.a.b`. The
//! parser and evaluator are ports of client-go; `go_format` reproduces Go's printing.

mod evaluator;
mod go_format;
mod go_unquote;
mod parser;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::error::{Error, Result};
use evaluator::{Evaluator, Item};
use go_format::GoNumber;
use parser::ParseError;

/// Render a kubectl JSONPath template (`{.a.b}`, text between blocks, `{range}{end}`, `{"\n"}`) against one object.
///
/// As `kubectl get -o jsonpath=`: missing keys print nothing, the results of one
/// `{...}` are joined by a space, strings print raw, maps and lists as compact JSON.
/// A template without braces is literal text (kubectl does not relax it here).
pub fn render(template: &str, data: &serde_json::Value) -> Result<String> {
    if template.is_empty() {
        return Err(Error::usage(
            "empty JSONPath template: template format specified but no template given",
        ));
    }
    let segments = parser::parse(template).map_err(|e| parse_error(template, e))?;
    let results = Evaluator::new(&segments)
        .find_results(0, Item::Borrowed(data))
        .map_err(|e| eval_error(template, e))?;
    let mut out = String::new();
    for list in &results {
        let texts: Vec<String> = list.iter().map(print_item).collect();
        out.push_str(&texts.join(" "));
    }
    Ok(out)
}

/// Evaluate one expression (the inside of `{...}` or a template with a single block) to the list of result values, for `wait --for=jsonpath=`.
///
/// As kubectl's wait, the expression is first relaxed: `.a.b`, `a.b`, `{a.b}` and
/// `{.a.b}` all mean `{.a.b}`; anything holding `{` or `}` inside is rejected.
pub fn evaluate(template: &str, data: &serde_json::Value) -> Result<Vec<serde_json::Value>> {
    let expression = relaxed_expression(template)?;
    let segments = parser::parse(&expression).map_err(|e| parse_error(&expression, e))?;
    let results = Evaluator::new(&segments)
        .find_results(0, Item::Borrowed(data))
        .map_err(|e| eval_error(&expression, e))?;
    let first = results.into_iter().next().unwrap_or_default();
    Ok(first.iter().map(|item| item.value().into_owned()).collect())
}

/// kubectl's `RelaxedJSONPathExpression`: `^\{\.?([^{}]+)\}$|^\.?([^{}]+)$` → `{.$1}`.
fn relaxed_expression(template: &str) -> Result<String> {
    if template.is_empty() {
        return Err(Error::usage("jsonpath expression cannot be empty"));
    }
    let braced = template.strip_prefix('{').and_then(|t| t.strip_suffix('}'));
    let inner = braced.unwrap_or(template);
    // `\.?` is optional: a lone `.` is kept as the path itself (`{.}` → `{..}`).
    let inner = match inner.strip_prefix('.') {
        Some(rest) if !rest.is_empty() => rest,
        _ => inner,
    };
    if inner.is_empty() || inner.contains(['{', '}']) {
        return Err(Error::usage(format!(
            "invalid JSONPath expression {template:?}: expected 'name1.name2', '.name1.name2', '{{name1.name2}}' or '{{.name1.name2}}'"
        )));
    }
    Ok(format!("{{.{inner}}}"))
}

/// kubectl's `PrintResults` for one value: maps and lists as JSON, the rest as Go's `fmt.Print`.
fn print_item(item: &Item<'_>) -> String {
    match item {
        Item::Float(float) => return GoNumber::Float(*float).to_text(),
        Item::NoValue => return "<no value>".into(),
        _ => {}
    }
    match &*item.value() {
        Value::String(s) => s.clone(),
        Value::Number(n) => GoNumber::of(n).to_text(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        container => go_format::to_go_json(container),
    }
}

/// A one-line reason, then the template with a caret under the offending character.
fn parse_error(template: &str, error: ParseError) -> Error {
    let line = template.replace(['\n', '\r', '\t'], " ");
    Error::usage(format!(
        "invalid JSONPath template: {} (expected {}) at column {}\n  {line}\n  {}^",
        error.message,
        error.expected,
        error.at + 1,
        " ".repeat(error.at),
    ))
}

fn eval_error(template: &str, message: String) -> Error {
    Error::usage(format!("error executing JSONPath template {template:?}: {message}"))
}
