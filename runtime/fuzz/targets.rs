//! The fuzz targets: what each parser must do for any input. Each returns a
//! short signature of its outcome (so the driver can tell new behaviour)
//! and panics when a property does not hold.

use rhai::{Dynamic, Map};
use serde_json::{Value, json};

use super::fuzz;
use crate::error::Error;

/// Quoted text dropped, digits folded, cut short: error messages that
/// differ only in the input they quote or in positions are one outcome.
fn signature(prefix: &str, message: &str) -> String {
    let mut quoted = false;
    let folded: String = message
        .chars()
        .filter(|c| {
            quoted ^= *c == '"';
            !quoted && *c != '"'
        })
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .take(60)
        .collect();
    format!("{prefix}:{folded}")
}

fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

/// A manifest splits into objects, or fails with a YAML error that points
/// inside the text; every object is a mapping.
fn manifest(input: &[u8]) -> String {
    let text = text(input);
    match crate::manifest::parse(&text, "fuzz") {
        Ok(objects) => {
            assert!(objects.iter().all(Value::is_object), "a non-object among {objects:?}");
            let checked = crate::kube::apply_check::required_fields(&objects);
            format!("ok:{}:{}", objects.len().min(3), checked.is_ok())
        }
        Err(Error::Yaml {
            document, line, message, ..
        }) => {
            // YAML's line breaks: LF, CRLF and a lone CR.
            let lines = text.replace("\r\n", "\n").split(['\n', '\r']).count();
            assert!(document >= 1 && line >= 1 && line <= lines + 1, "line {line} of {lines}: {message}");
            signature("yaml", &message)
        }
        Err(other) => panic!("not a YAML error: {other}"),
    }
}

/// The object the JSONPath target evaluates against unless the input brings its own.
fn sample() -> Value {
    json!({"kind": "Pod", "metadata": {"name": "p", "labels": {"app": "a", "x.y/z": "1"}},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 443}]}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Init", "status": "False"}], "n": 1.5}})
}

/// Line 1: a template; the rest: the data (JSON), else a sample Pod.
fn jsonpath(input: &[u8]) -> String {
    let text = text(input);
    let (template, data) = text.split_once('\n').unwrap_or((&text, ""));
    let data = serde_json::from_str(data).unwrap_or_else(|_| sample());
    let rendered = crate::jsonpath::render(template, &data);
    let evaluated = crate::jsonpath::evaluate(template, &data);
    let one = |r: Result<String, Error>| match r {
        Ok(s) => format!("ok{}", s.len().min(4)),
        Err(e) => signature("err", &e.to_string()),
    };
    format!("{}|{}", one(rendered), one(evaluated.map(|v| v.len().to_string())))
}

/// A selector parses or says why; a parsed one matches any object without panicking.
fn selector(input: &[u8]) -> String {
    let text = text(input);
    match crate::selector::Selector::parse(&text) {
        Ok(selector) => {
            let again = crate::selector::Selector::parse(&text).expect("parsing is deterministic");
            assert_eq!(selector, again);
            let matched = [sample(), json!({}), json!({"metadata": {"labels": null}})].map(|o| selector.matches(&o));
            format!("ok:{matched:?}")
        }
        Err(e) => signature("err", &e.to_string()),
    }
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct Options {
    namespace: Option<String>,
    force: Option<bool>,
    timeout: Option<Value>,
    #[serde(rename = "for")]
    wait_for: Option<Value>,
}

/// An option map (written as JSON, converted to a Rhai map as a playbook
/// passes it) is accepted or refused with a usage error; durations too.
fn options(input: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(input) else {
        return "not json".into();
    };
    let Ok(dynamic) = rhai::serde::to_dynamic(&value) else {
        return "not a rhai value".into();
    };
    let Some(map) = dynamic.try_cast::<Map>() else {
        return "not a map".into();
    };
    let keys = ["namespace", "force", "timeout", "for"];
    match crate::options::parse::<Options>("fuzz", Some(map), &keys) {
        Ok(opts) => {
            let duration = crate::options::duration(&opts.timeout, std::time::Duration::ZERO, "timeout");
            let many = crate::options::one_or_many(&opts.wait_for);
            let duration = match duration {
                Ok(_) => "ok".to_string(),
                Err(e) => {
                    assert_eq!(e.kind(), "usage", "{e}");
                    signature("duration", &e.to_string())
                }
            };
            format!(
                "ok:{duration}:{}:{}",
                many.len().min(2),
                opts.namespace.is_some() || opts.force.is_some()
            )
        }
        Err(e) => {
            assert_eq!(e.kind(), "usage", "{e}");
            signature("err", &e.to_string())
        }
    }
}

/// JSON → Rhai → JSON is the identity; a value a script builds converts to
/// JSON and back to the same JSON. The input is JSON, else a Rhai expression.
fn rhai_json(input: &[u8]) -> String {
    let text = text(input);
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        let dynamic = rhai::serde::to_dynamic(&value).expect("any JSON converts to Rhai");
        let back: Value = rhai::serde::from_dynamic(&dynamic).expect("converted JSON converts back");
        assert_eq!(back, as_rhai_numbers(value.clone()), "JSON → Rhai → JSON changed the value");
        return format!("json:{}", kind_of(&value));
    }
    let mut engine = crate::engine::bare();
    // Enough for loops that nest values past the depth bound; building a
    // nested value costs the engine O(depth²), so not much more.
    engine.set_max_operations(2_000);
    let Ok(dynamic) = engine.eval::<Dynamic>(&text) else {
        return "script error".into();
    };
    match crate::rhai_json::to_json(&dynamic, "fuzz") {
        Ok(value) => {
            let again = rhai::serde::to_dynamic(&value).expect("JSON from Rhai converts back");
            let twice: Value = rhai::serde::from_dynamic(&again).expect("and again");
            assert_eq!(twice, value, "Rhai → JSON → Rhai → JSON changed the value");
            format!("rhai:{}", kind_of(&value))
        }
        Err(e) => signature("rhai err", &e.to_string()),
    }
}

/// Rhai's integers are i64: a larger JSON integer becomes a float (found by
/// fuzzing; Kubernetes' integers are int64, so nothing real is lost).
fn as_rhai_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.into_iter().map(as_rhai_numbers).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, as_rhai_numbers(v))).collect()),
        other => other,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[test]
fn fuzz_manifest() {
    let tokens = [
        "---\n",
        "--- #c\n",
        "...\n",
        "kind: List\nitems:\n",
        "- ",
        ": ",
        "&a ",
        "*a",
        "!!str ",
        "0o17",
        "0644",
        "|\n  ",
        "{",
        "[",
        "\n  ",
    ];
    fuzz("manifest", &tokens, manifest);
}

#[test]
fn fuzz_jsonpath() {
    let tokens = [
        "{", "}", "[", "]", "..", ".", "*", "?(@.", "==", "!=", "<", ">", "'", "\"", "\\", "{range ", "{end}", ":", ",", "-1", "@", "$",
        "()", "&&", "||", " ",
    ];
    fuzz("jsonpath", &tokens, jsonpath);
}

#[test]
fn fuzz_selector() {
    let tokens = ["=", "==", "!=", "!", ",", " in ", " notin ", "(", ")", " ", "a", "x.y/z"];
    fuzz("selector", &tokens, selector);
}

#[test]
fn fuzz_options() {
    let tokens = [
        "\"timeout\":",
        "\"for\":",
        "\"namespace\":",
        "\"force\":",
        "1e308",
        "-0",
        "1e-400",
        "18446744073709551616",
        "\"3m\"",
        "\"1h30m\"",
        "[",
        "]",
        "{",
        "}",
        ",",
        "null",
        "true",
    ];
    fuzz("options", &tokens, options);
}

#[test]
fn fuzz_rhai_json() {
    let tokens = [
        "#{",
        "}",
        "[",
        "]",
        "()",
        "'x'",
        "1.5e300",
        "-9223372036854775808",
        "\"",
        "null",
        ":",
        ",",
        "for i in 0..99 {",
        "let a = ",
        ";",
        "a = [a];",
        "`${",
        "blob(3)",
    ];
    fuzz("rhai_json", &tokens, rhai_json);
}
