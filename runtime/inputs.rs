//! Finding a playbook's required inputs before it runs, so that a missing
//! one is reported before any cluster is touched.

/// Names in `input("NAME")` calls with no default, in order of appearance.
/// A textual scan (comments skipped): Rhai's AST is not public API.
pub fn required(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("input(") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "input(".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue; // some_input( or x.input(
            }
            let trimmed = rest.trim_start();
            let Some(quoted) = trimmed.strip_prefix('"') else { continue };
            let Some(end) = quoted.find('"') else { continue };
            let name = &quoted[..end];
            if quoted[end + 1..].trim_start().starts_with(')') && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// One `input(...)` of a script, as `mesh-run inputs` explains it.
#[derive(Debug, PartialEq)]
pub struct Input {
    pub name: String,
    /// The default's source text (`"1.24.3"`, `dp.server()`), if it has one.
    pub default: Option<String>,
    /// The `//` comment lines right above the line, or the comment ending it.
    pub doc: String,
}

/// Every `input("NAME"...)` of a script, first occurrence of each name.
pub fn list(source: &str) -> Vec<Input> {
    let lines: Vec<&str> = source.lines().collect();
    let mut inputs: Vec<Input> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let (code, trailing) = line.split_once("//").map_or((*line, None), |(c, t)| (c, Some(t.trim())));
        let mut rest = code;
        while let Some(at) = rest.find("input(") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "input(".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let Some(quoted) = rest.trim_start().strip_prefix('"') else {
                continue;
            };
            let Some(end) = quoted.find('"') else { continue };
            let name = &quoted[..end];
            if inputs.iter().any(|n| n.name == name) {
                continue;
            }
            let after = quoted[end + 1..].trim_start();
            let default = after.strip_prefix(',').map(|d| until_close(d).trim().to_string());
            let above: Vec<&str> = lines[..i]
                .iter()
                .rev()
                .map_while(|l| l.trim_start().strip_prefix("//"))
                .map(str::trim)
                .collect();
            let doc = match trailing {
                Some(t) if !t.is_empty() => t.to_string(),
                _ => above.into_iter().rev().collect::<Vec<_>>().join(" "),
            };
            inputs.push(Input {
                name: name.to_string(),
                default,
                doc,
            });
        }
    }
    inputs
}

/// `text` up to the `)` that closes the call it is in.
fn until_close(text: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' if depth == 0 => return &text[..i],
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_inputs_with_defaults_and_docs() {
        let src = r#"
// The Istio version.
// Without the "v".
let v = input("ISTIO_VERSION", "1.24.3");
let cp = cluster(input("CTX_CONTROL_PLANE_CLUSTER")); // The control plane's context.
let api = input("API", dp.server());
let all = list(input("ALL", input("ONE", "")));
"#;
        let found = list(src);
        let names: Vec<&str> = found.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["ISTIO_VERSION", "CTX_CONTROL_PLANE_CLUSTER", "API", "ALL", "ONE"]);
        assert_eq!(found[0].default.as_deref(), Some("\"1.24.3\""));
        assert_eq!(found[0].doc, "The Istio version. Without the \"v\".");
        assert_eq!(found[1].default, None);
        assert_eq!(found[1].doc, "The control plane's context.");
        assert_eq!(found[2].default.as_deref(), Some("dp.server()"));
        assert_eq!(found[3].default.as_deref(), Some("input(\"ONE\", \"\")"));
    }

    #[test]
    fn finds_inputs_without_default() {
        let src = r#"
let v = input("ISTIO_VERSION", "1.24.3");
let cp = cluster(input("CTX_CONTROL_PLANE_CLUSTER"));
let dp = cluster(input( "CTX_DATA_PLANE_CLUSTER" ));
// let x = input("COMMENTED");
let again = input("CTX_CONTROL_PLANE_CLUSTER");
let y = my_input("NOT_ME");
"#;
        assert_eq!(required(src), vec!["CTX_CONTROL_PLANE_CLUSTER", "CTX_DATA_PLANE_CLUSTER"]);
    }
}
