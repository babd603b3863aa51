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

#[cfg(test)]
mod tests {
    use super::*;

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
