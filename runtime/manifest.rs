//! Multi-document YAML manifests: split, parse (YAML 1.1 octals, like
//! kubectl), and report errors by document number and absolute line.

use serde_json::Value;

use crate::error::{Error, Result};

/// Parses every non-empty document of `text`; `kind: List` is flattened.
pub fn parse(text: &str, source_name: &str) -> Result<Vec<Value>> {
    // YAML breaks lines at CR too; the splitter must count the same lines
    // (found by fuzzing: an error on "line 3" of a one-line text).
    let text = if text.contains('\r') {
        std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    let mut objects = Vec::new();
    for (index, (first_line, doc)) in split_documents(&text).into_iter().enumerate() {
        if doc.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            continue;
        }
        let mut options = serde_saphyr::Options::default();
        options.legacy_octal_numbers = true;
        let value: Value = serde_saphyr::from_str_with_options(&doc, options).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line() as usize, l.column() as usize)).unwrap_or((1, 1));
            Error::Yaml {
                source_name: source_name.to_string(),
                document: index + 1,
                line: first_line + line - 1,
                column,
                message: first_line_of(&e.to_string()),
            }
        })?;
        match value {
            Value::Null => {}
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                let items = m.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
                // Found by fuzzing: `items: [1, ~]` must not pass as objects.
                if let Some((i, item)) = items.iter().enumerate().find(|(_, item)| !item.is_object()) {
                    return Err(Error::Yaml {
                        source_name: source_name.to_string(),
                        document: index + 1,
                        line: first_line,
                        column: 1,
                        message: format!(
                            "item {} of the List: expected a Kubernetes object (a mapping), found {}",
                            i + 1,
                            type_name(item)
                        ),
                    });
                }
                objects.extend(items);
            }
            Value::Object(_) => objects.push(value),
            other => {
                return Err(Error::Yaml {
                    source_name: source_name.to_string(),
                    document: index + 1,
                    line: first_line,
                    column: 1,
                    message: format!("expected a Kubernetes object (a mapping), found {}", type_name(&other)),
                });
            }
        }
    }
    Ok(objects)
}

/// Documents with the 1-based line each starts on. Splits on `---` lines
/// (with optional trailing content such as comments), as YAML does.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_separator = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_separator {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            continue;
        }
        if line == "..." {
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs
}

fn first_line_of(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_skips_empty_documents() {
        let text =
            "---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n--- # trailing\nkind: Namespace\n";
        let objs = parse(text, "t").unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1]["kind"], "Namespace");
    }

    #[test]
    fn carriage_returns_break_lines_and_documents_as_in_yaml() {
        let objs = parse("kind: A\r---\r\nkind: B\r\n", "t").unwrap();
        assert_eq!(objs.len(), 2);
        match parse("\r {\r {", "t").unwrap_err() {
            Error::Yaml { line, .. } => assert!(line <= 3, "line {line}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn octal_numbers_read_like_kubectl() {
        let objs = parse("kind: X\nmode: 0644\n", "t").unwrap();
        assert_eq!(objs[0]["mode"], 420);
    }

    #[test]
    fn errors_name_document_and_absolute_line() {
        let text = "kind: A\n---\nkind: B\nmetadata:\n  name: [unclosed\n";
        let err = parse(text, "x.yaml").unwrap_err();
        match &err {
            Error::Yaml {
                document,
                line,
                source_name,
                ..
            } => {
                assert_eq!(*document, 2);
                assert!(*line >= 5, "line {line}");
                assert_eq!(source_name, "x.yaml");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lists_are_flattened_and_scalars_rejected() {
        let objs = parse("kind: List\nitems:\n- kind: A\n- kind: B\n", "t").unwrap();
        assert_eq!(objs.len(), 2);
        let err = parse("just a string\n", "t").unwrap_err().to_string();
        assert!(err.contains("expected a Kubernetes object"), "{err}");
        let err = parse("kind: List\nitems:\n- kind: A\n- \n", "t").unwrap_err().to_string();
        assert!(
            err.contains("item 2 of the List: expected a Kubernetes object (a mapping), found nothing"),
            "{err}"
        );
    }
}
