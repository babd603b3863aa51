//! What `mesh-run doc` prints: the primitives (from the registry) and the
//! stdlib modules (from their `///` comments), all of it or one entry by
//! name. The README's reference is this text (scripts/update-readme.sh).

use crate::check::suggest;
use crate::primitives::{self, Primitive};
use crate::stdlib;

/// A documented function of a stdlib module.
#[derive(Debug, PartialEq)]
pub struct FnDoc {
    pub name: String,
    pub params: String,
    pub doc: String,
}

/// The whole reference: every primitive, then every stdlib module.
pub fn reference() -> String {
    let mut out = primitives::reference();
    out.push_str("### Stdlib modules\n\n");
    out.push_str("Imported with `import \"mesh/NAME\" as NAME;` and called as `NAME::function(...)`.\n\n");
    for (name, text) in stdlib::MODULES {
        out.push_str(&module(name, text));
    }
    out
}

/// One entry: a primitive (`wait`), a module (`mesh/istio` or `istio`), or a
/// module function (`istio::wait_ready`, or `wait_ready` when one module has it).
pub fn entry(name: &str) -> Result<String, String> {
    if let Some(p) = Primitive::find(name) {
        return Ok(p.reference());
    }
    let module_name = name.trim_start_matches("mesh/").trim_end_matches(".rhai");
    if let Some((m, text)) = stdlib::MODULES.iter().find(|(m, _)| *m == module_name) {
        return Ok(module(m, text));
    }
    let (wanted_module, function) = name.split_once("::").map_or((None, name), |(m, f)| (Some(m), f));
    for (m, text) in stdlib::MODULES {
        if wanted_module.is_some_and(|w| w != *m) {
            continue;
        }
        if let Some(f) = functions(text).into_iter().find(|f| f.name == function) {
            return Ok(function_entry(m, &f));
        }
    }
    // (what may have been meant, what to show): a function is known with and without its module.
    let mut names: Vec<(String, String)> = primitives::ALL.iter().map(|p| (p.name.to_string(), p.name.to_string())).collect();
    for (m, text) in stdlib::MODULES {
        names.push((format!("mesh/{m}"), format!("mesh/{m}")));
        for f in functions(text) {
            let qualified = format!("{m}::{}", f.name);
            names.push((f.name, qualified.clone()));
            names.push((qualified.clone(), qualified));
        }
    }
    let hint = suggest::closest(name, names.iter().map(|(k, _)| k.as_str()))
        .and_then(|k| names.iter().find(|(n, _)| n == k))
        .map(|(_, shown)| format!("; did you mean \"{shown}\"?"))
        .unwrap_or_default();
    Err(format!(
        "no primitive, stdlib module or stdlib function named \"{name}\"{hint} (`mesh-run doc` lists them all)"
    ))
}

fn module(name: &str, text: &str) -> String {
    let mut out = format!("#### `mesh/{name}`\n\n");
    let header = header(text);
    if !header.is_empty() {
        out.push_str(&header);
        out.push_str("\n\n");
    }
    for f in functions(text) {
        out.push_str(&function_entry(name, &f));
    }
    out
}

fn function_entry(module: &str, f: &FnDoc) -> String {
    let doc = if f.doc.is_empty() { "(undocumented)" } else { &f.doc };
    format!("    {module}::{}({})\n\n{doc}\n\n", f.name, f.params)
}

/// The module's leading `//` comment (what the module is for).
fn header(text: &str) -> String {
    text.lines()
        .map_while(|l| l.strip_prefix("//").filter(|_| !l.starts_with("///")))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// Public functions (`private fn` left out) with the `///` lines right above them.
pub fn functions(text: &str) -> Vec<FnDoc> {
    let mut out = Vec::new();
    let mut doc: Vec<&str> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(d) = trimmed.strip_prefix("///") {
            doc.push(d.strip_prefix(' ').unwrap_or(d));
            continue;
        }
        if let Some(rest) = line.strip_prefix("fn ")
            && let Some((name, after)) = rest.split_once('(')
            && let Some((params, _)) = after.split_once(')')
        {
            out.push(FnDoc {
                name: name.trim().to_string(),
                params: params.trim().to_string(),
                doc: doc.join("\n").trim().to_string(),
            });
        }
        doc.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_take_the_doc_comment_right_above() {
        let text = "// Module header.\n// Second line.\n\n/// Does a.\n/// Twice.\nfn a(x, y) {\n}\n\n// not a doc\nfn b() {}\n/// Hidden.\nprivate fn c() {}\n";
        assert_eq!(
            functions(text),
            vec![
                FnDoc {
                    name: "a".into(),
                    params: "x, y".into(),
                    doc: "Does a.\nTwice.".into()
                },
                FnDoc {
                    name: "b".into(),
                    params: "".into(),
                    doc: "".into()
                },
            ]
        );
        assert_eq!(header(text), "Module header.\nSecond line.");
    }

    #[test]
    fn one_entry_by_name() {
        assert!(entry("wait").unwrap().starts_with("### `wait`"));
        assert!(
            entry("mesh/istio")
                .unwrap()
                .contains("istio::wait_ready(cluster, resource, timeout)")
        );
        assert!(entry("istio").unwrap().starts_with("#### `mesh/istio`"));
        let f = entry("istio::wait_ready").unwrap();
        assert!(f.starts_with("    istio::wait_ready(cluster, resource, timeout)"), "{f}");
        assert!(f.contains("kubectl wait"), "{f}");
        assert!(entry("cluster_names").unwrap().contains("external::cluster_names(names, count)"));
        assert_eq!(
            entry("istio::wait_redy").unwrap_err(),
            "no primitive, stdlib module or stdlib function named \"istio::wait_redy\"; did you mean \"istio::wait_ready\"? (`mesh-run doc` lists them all)"
        );
    }

    /// Every public stdlib function says what it does.
    #[test]
    fn every_stdlib_function_is_documented() {
        for (m, text) in stdlib::MODULES {
            for f in functions(text) {
                assert!(!f.doc.is_empty(), "mesh/{m}: fn {} has no /// comment", f.name);
            }
        }
    }
}
