//! `mesh-run check`, and every run before its first request: the mistakes a
//! playbook shows without running it. Unknown functions (primitives, Rhai's,
//! the script's, the stdlib's) and wrong argument counts, unknown keys in
//! literal option maps, literal manifests that are not YAML, `--set` keys no
//! `input()` reads, contexts the kubeconfig lacks — each at its line, with a
//! "did you mean". Reads Rhai's AST (the `internals` feature): nothing runs.

mod calls;
mod inputs;
pub mod known;
mod manifests;
pub mod suggest;
pub mod syntax;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{AST, ASTNode, Engine, Expr, Position, Stmt};

use crate::diagnostic::{Diagnostic, Frame};
use crate::error::Error;
use crate::modules::Sources;
use known::{Native, ScriptFn};

/// One compiled script: the playbook or a module it imports.
pub struct Script {
    pub name: String,
    pub text: String,
    pub ast: AST,
    pub fns: Vec<ScriptFn>,
    /// `import "PATH" as ALIAS;`: (alias, path, name of the loaded script).
    pub imports: Vec<(String, String, String)>,
}

/// What the check knows besides the scripts.
#[derive(Default)]
pub struct Settings {
    /// `--set` of the run (checked: some `input()` reads each).
    pub sets: HashMap<String, String>,
    /// The kubeconfig's contexts, when there is one to read.
    pub contexts: Option<Vec<String>>,
    /// `--stdlib DIR`: `mesh/...` imports are read there before the built-in stdlib.
    pub stdlib_dir: Option<PathBuf>,
}

/// One mistake at one place.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub source: String,
    /// (line, column), 1-based; none for mistakes on the command line.
    pub at: Option<(usize, usize)>,
    pub message: String,
    pub kind: Kind,
}

/// Which error a finding becomes (its `kind` and exit code).
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A mistake in the script's text.
    Script,
    /// A mistake on the command line (`--set`).
    Usage,
    /// A context the kubeconfig lacks: the error a run would meet at `cluster(...)`, earlier.
    Context { context: String, available: String },
}

impl Finding {
    pub fn at(source: &str, pos: Position, message: String) -> Self {
        Finding {
            source: source.to_string(),
            at: pos.line().map(|l| (l, pos.position().unwrap_or(1))),
            message,
            kind: Kind::Script,
        }
    }

    pub fn diagnostic(&self) -> Diagnostic {
        let frames = self
            .at
            .map(|(line, column)| Frame {
                source: self.source.clone(),
                line,
                column,
            })
            .into_iter()
            .collect();
        let error = match &self.kind {
            Kind::Script => Error::Script {
                message: self.message.clone(),
            },
            Kind::Usage => Error::usage(self.message.clone()),
            Kind::Context { context, available } => Error::UnknownContext {
                context: context.clone(),
                available: available.clone(),
            },
        };
        Diagnostic {
            error: Arc::new(error),
            frames,
        }
    }
}

/// Compiles the playbook and, following its imports, every module; the
/// texts go into `sources` (diagnostics quote them). A syntax error ends it.
pub fn load(
    engine: &Engine,
    name: &str,
    text: &str,
    base_dir: &Path,
    stdlib_dir: Option<&Path>,
    sources: &Sources,
) -> Result<Vec<Script>, Diagnostic> {
    let mut scripts: Vec<Script> = Vec::new();
    let mut pending = vec![(name.to_string(), text.to_string(), None::<Frame>)];
    while let Some((name, text, imported_at)) = pending.pop() {
        if scripts.iter().any(|s| s.name == name) {
            continue;
        }
        sources.insert(&name, &text);
        let ast = engine.compile(&text).map_err(|e| {
            let mut d = syntax::diagnose(*e.0, e.1, &name, &text);
            d.frames.splice(0..0, imported_at.clone());
            d
        })?;
        let mut imports = Vec::new();
        for (alias, path, pos) in import_statements(&ast) {
            let module = crate::modules::locate_for_check(base_dir, stdlib_dir, Some(&name), &path)
                .map_err(|e| Finding::at(&name, pos, format!("cannot import \"{path}\": {e}{}", stdlib_hint(&path))).diagnostic())?;
            imports.push((alias, path, module.0.clone()));
            let at = Finding::at(&name, pos, String::new()).diagnostic().frames.pop();
            pending.push((module.0, module.1, at));
        }
        let fns = ScriptFn::of(&ast);
        scripts.push(Script {
            name,
            text,
            ast,
            fns,
            imports,
        });
    }
    Ok(scripts)
}

/// Every mistake in the loaded scripts, in the order of the scripts and their lines.
pub fn analyze(engine: &Engine, scripts: &[Script], settings: &Settings) -> Vec<Finding> {
    let native = Native::of(engine);
    let mut out = Vec::new();
    for script in scripts {
        let imports: calls::Imports = script
            .imports
            .iter()
            .filter_map(|(alias, path, loaded)| {
                let module = scripts.iter().find(|s| &s.name == loaded)?;
                Some((alias.as_str(), path.as_str(), module.fns.as_slice()))
            })
            .collect();
        let mut found = Vec::new();
        calls::check(script, &native, &imports, &mut found);
        manifests::check(script, &mut found);
        found.sort_by_key(|f| f.at);
        out.extend(found);
    }
    inputs::check(scripts, settings, &mut out);
    out
}

/// `load` then `analyze`: the diagnostics of every mistake, or the number of scripts.
pub fn check(
    engine: &Engine,
    name: &str,
    text: &str,
    base_dir: &Path,
    sources: &Sources,
    settings: &Settings,
) -> Result<usize, Vec<Diagnostic>> {
    let scripts = load(engine, name, text, base_dir, settings.stdlib_dir.as_deref(), sources).map_err(|d| vec![d])?;
    let findings = analyze(engine, &scripts, settings);
    if findings.is_empty() {
        Ok(scripts.len())
    } else {
        Err(findings.iter().map(Finding::diagnostic).collect())
    }
}

/// `import "PATH" as ALIAS;` statements with a literal path, anywhere in the script.
fn import_statements(ast: &AST) -> Vec<(String, String, Position)> {
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Import(import, pos))) = path.last()
            && let Expr::StringConstant(p, _) = &import.0
        {
            found.push((import.1.name.to_string(), p.to_string(), *pos));
        }
        true
    });
    found
}

fn stdlib_hint(path: &str) -> String {
    let Some(name) = path.strip_prefix("mesh/") else {
        return String::new();
    };
    suggest::hint(name.trim_end_matches(".rhai"), crate::stdlib::MODULES.iter().map(|(k, _)| *k))
        .replace("did you mean \"", "did you mean \"mesh/")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The findings' messages for `text` (a playbook beside a `lib.rhai` module).
    fn findings(text: &str, settings: &Settings) -> Vec<String> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let engine = crate::engine::for_check(crate::bridge::Bridge::new(runtime.handle().clone()));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lib.rhai"),
            "/// Adds.\nfn add(a, b) { a + b }\nprivate fn hidden() {}\n",
        )
        .unwrap();
        let name = dir.path().join("p.rhai").display().to_string();
        let scripts = load(&engine, &name, text, dir.path(), None, &Sources::default()).unwrap_or_else(|d| panic!("{}", d.error));
        analyze(&engine, &scripts, settings)
            .into_iter()
            .map(|f| match f.at {
                Some((l, c)) => format!("{l}:{c} {}", f.message),
                None => f.message.replace(&name, "p.rhai"),
            })
            .collect()
    }

    #[test]
    fn calls_are_checked_against_every_kind_of_function() {
        let text = r#"import "lib" as lib;
fn mine(x) { x.len() }
let f = |x| x + 1;
let cp = cluster("a");
cp.wait("istio/x", #{ "for": "condition=Ready", timeout: "1m" });
print(mine("ab") + f(1) + lib::add(1, 2) + "x".sub_string(1) + [1].map(|v| v * 2).len());
let obj = #{ greet: |n| `hi ${n}` };
obj.greet("x");
"#;
        assert_eq!(findings(text, &Settings::default()), Vec::<String>::new());
        let text = r#"import "lib" as lib;
fn mine(x) { x }
mine(1, 2);
lib::add(1);
lib::hidden();
lb::add(1, 2);
cluster("a").wiat("x");
cluster("a").get("x", #{ namespace: "n", selectr: "a=b" });
"#;
        assert_eq!(
            findings(text, &Settings::default()),
            vec![
                "3:1 mine(...) called with 2 argument(s); defined as fn mine(x)",
                "4:6 lib::add(...) called with 1 argument(s); defined in \"lib\" as fn add(a, b)",
                "5:6 unknown function lib::hidden: \"lib\" has no function `hidden` (its functions: add; `private fn`s are not callable from outside)",
                "6:5 no module is imported as `lb` (in lb::add); did you mean \"lib\"?",
                "7:14 unknown method .wiat(...); did you mean \"wait\"? (`mesh-run doc` lists the primitives and the stdlib)",
                "8:42 unknown option \"selectr\" for get; did you mean \"selector\"? (valid options: namespace, selector)",
            ]
        );
    }

    #[test]
    fn sets_and_contexts_are_checked_against_the_inputs_and_the_kubeconfig() {
        let text = "let cp = cluster(input(\"CTX_CP\"));\nlet all = input(\"CTX_ALL\", \"a,b\");\ncluster(\"data-plan\");\n";
        let settings = Settings {
            sets: [("CTX_CP".to_string(), "a".to_string()), ("VERSON".to_string(), "1".to_string())].into(),
            contexts: Some(vec!["a".into(), "b".into(), "data-plane".into()]),
            stdlib_dir: None,
        };
        assert_eq!(
            findings(text, &settings),
            vec![
                "--set VERSON: no input(\"VERSON\") in p.rhai or its modules reads it (its inputs: CTX_CP, CTX_ALL; `mesh-run inputs p.rhai` explains them)",
                "3:1 no context \"data-plan\" in the kubeconfig (cluster(...)); did you mean \"data-plane\"? (contexts: a, b, data-plane)",
            ]
        );
    }
}
