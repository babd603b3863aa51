//! Every call in a script against what exists: unknown functions and
//! methods, wrong argument counts (with the expected forms), unknown module
//! functions, and unknown keys in literal option maps of primitives.

use std::collections::BTreeSet;

use rhai::{ASTNode, Expr, FnCallExpr, Position, Stmt};

use super::known::{Native, ScriptFn, forms_text};
use super::suggest;
use super::{Finding, Script};
use crate::primitives::Primitive;

/// The modules a script imported, by alias: (import path, public functions).
pub type Imports<'a> = Vec<(&'a str, &'a str, &'a [ScriptFn])>;

pub fn check(script: &Script, native: &Native, imports: &Imports, out: &mut Vec<Finding>) {
    let (variables, properties) = names(script);
    let checker = Checker {
        script,
        native,
        imports,
        variables,
        properties,
    };
    script.ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, pos))) | Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) if !call.is_operator_call() => {
                checker.call(call, false, *pos, out)
            }
            Some(ASTNode::Expr(Expr::MethodCall(call, pos))) => checker.call(call, true, *pos, out),
            _ => {}
        }
        true
    });
}

struct Checker<'a> {
    script: &'a Script,
    native: &'a Native,
    imports: &'a Imports<'a>,
    /// Names bound to values: calling one calls the function pointer it holds.
    variables: BTreeSet<String>,
    /// Map keys and properties: `obj.f(x)` calls a closure stored under `f`.
    properties: BTreeSet<String>,
}

impl Checker<'_> {
    fn call(&self, call: &FnCallExpr, method: bool, pos: Position, out: &mut Vec<Finding>) {
        let name = call.name.as_str();
        let given = call.args.len();
        let mut finding = |message: String| out.push(Finding::at(&self.script.name, pos, message));
        if !call.namespace.is_empty() {
            return self.module_call(call, finding);
        }
        // `f(x)` with `f` a closure variable; `obj.f(x)` with `f` a closure property of a map.
        if Native::is_keyword(name) || (!method && self.variables.contains(name)) || (method && self.properties.contains(name)) {
            return;
        }
        // A script function called as a method binds `this`: its parameters are the arguments.
        let own: Vec<&ScriptFn> = self.script.fns.iter().filter(|f| f.name == name).collect();
        let native = self.native.counts(name);
        let fits = own.iter().any(|f| f.params.len() == given) || native.is_some_and(|n| n.contains(&(given + usize::from(method))));
        if fits {
            return self.options(call, method, out);
        }
        let shown = if method { format!(".{name}(...)") } else { format!("{name}(...)") };
        if own.is_empty() && native.is_none() {
            let known = self.native.names().chain(self.script.fns.iter().map(|f| f.name.as_str()));
            let qualified: Vec<String> = self
                .imports
                .iter()
                .flat_map(|(alias, _, fns)| fns.iter().map(move |f| format!("{alias}::{}", f.name)))
                .collect();
            // `wait_ready(...)` for `istio::wait_ready(...)`: the module's name wins.
            let hint = match qualified.iter().find(|q| q.ends_with(&format!("::{name}"))) {
                Some(q) => format!("; did you mean \"{q}\"?"),
                None => suggest::hint(name, known),
            };
            let what = if method { "method" } else { "function" };
            return finding(format!(
                "unknown {what} {shown}{hint} (`mesh-run doc` lists the primitives and the stdlib)"
            ));
        }
        let expected = if let Some(p) = Primitive::find(name) {
            format!("; its forms:{}", forms_text(p))
        } else if !own.is_empty() {
            format!(
                "; defined as {}",
                own.iter().map(|f| f.signature()).collect::<Vec<_>>().join(" and ")
            )
        } else {
            let counts: Vec<String> = native
                .into_iter()
                .flatten()
                .filter(|n| **n >= usize::from(method))
                .map(|n| (n - usize::from(method)).to_string())
                .collect();
            format!("; it takes {} argument(s)", counts.join(" or "))
        };
        finding(format!("{shown} called with {given} argument(s){expected}"));
    }

    fn module_call(&self, call: &FnCallExpr, mut finding: impl FnMut(String)) {
        let (alias, name) = (call.namespace.root(), call.name.as_str());
        let Some((_, path, fns)) = self.imports.iter().find(|(a, _, _)| *a == alias) else {
            let hint = suggest::hint(alias, self.imports.iter().map(|(a, _, _)| *a));
            return finding(format!("no module is imported as `{alias}` (in {alias}::{name}){hint}"));
        };
        let public: Vec<&ScriptFn> = fns.iter().filter(|f| f.name == name && !f.private).collect();
        if public.is_empty() {
            let hint = suggest::hint(name, fns.iter().filter(|f| !f.private).map(|f| f.name.as_str()));
            let listed = if path.starts_with("mesh/") {
                format!("`mesh-run doc {path}` lists its functions")
            } else {
                let public: Vec<&str> = fns.iter().filter(|f| !f.private).map(|f| f.name.as_str()).collect();
                format!("its functions: {}; `private fn`s are not callable from outside", public.join(", "))
            };
            return finding(format!(
                "unknown function {alias}::{name}: \"{path}\" has no function `{name}`{hint} ({listed})"
            ));
        }
        if !public.iter().any(|f| f.params.len() == call.args.len()) {
            let defined: Vec<String> = public.iter().map(|f| f.signature()).collect();
            finding(format!(
                "{alias}::{name}(...) called with {} argument(s); defined in \"{path}\" as {}",
                call.args.len(),
                defined.join(" and ")
            ));
        }
    }

    /// A literal option map given to a primitive: each key must be one it knows.
    fn options(&self, call: &FnCallExpr, method: bool, out: &mut Vec<Finding>) {
        let Some(p) = Primitive::find(&call.name) else { return };
        let Some(Expr::Map(map, _)) = call.args.last() else { return };
        let given = call.args.len() + usize::from(method);
        let takes_options = p
            .forms()
            .iter()
            .any(|(m, params)| params.len() + usize::from(*m) == given && params.last().is_some_and(|l| l.starts_with("#{")));
        if !takes_options {
            return;
        }
        for (key, _) in map.0.iter() {
            if !p.options.contains(&key.name.as_str()) {
                let hint = suggest::hint(&key.name, p.options.iter().copied());
                out.push(Finding::at(
                    &self.script.name,
                    key.pos,
                    format!(
                        "unknown option \"{}\" for {}{hint} (valid options: {})",
                        key.name,
                        p.name,
                        p.options.join(", ")
                    ),
                ));
            }
        }
    }
}

/// Every name a script binds (`let`/`const`, loop variables, parameters,
/// names read), and every map key and property it names.
fn names(script: &Script) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut names = BTreeSet::new();
    let mut properties = BTreeSet::new();
    for f in script.ast.iter_fn_def() {
        names.extend(f.params.iter().map(|p| p.to_string()));
    }
    script.ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Stmt(Stmt::Var(v, ..))) => {
                names.insert(v.0.name.to_string());
            }
            Some(ASTNode::Stmt(Stmt::For(f, _))) => {
                names.insert(f.0.name.to_string());
                if let Some(i) = &f.1 {
                    names.insert(i.name.to_string());
                }
            }
            Some(ASTNode::Expr(Expr::Variable(v, ..))) if v.2.is_empty() => {
                names.insert(v.1.to_string());
            }
            Some(ASTNode::Expr(Expr::Map(map, _))) => properties.extend(map.0.iter().map(|(key, _)| key.name.to_string())),
            Some(ASTNode::Expr(Expr::Property(p, _))) => {
                properties.insert(p.2.to_string());
            }
            _ => {}
        }
        true
    });
    (names, properties)
}
