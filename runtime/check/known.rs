//! The functions a script can call, and with how many arguments: the
//! engine's (Rhai's packages, mesh-run's primitives and types), Rhai's
//! keywords, the script's own functions, and those of the modules it imports.

use std::collections::{BTreeMap, BTreeSet};

use rhai::{AST, Engine, FnAccess};

use crate::primitives::Primitive;

/// Rhai's keyword functions: handled by the engine itself, not registered.
/// Their argument counts vary (`call`, `curry`), so any count is accepted.
const KEYWORDS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
];

/// Native functions by name, with their parameter counts (a method's object included).
pub struct Native(BTreeMap<String, BTreeSet<usize>>);

impl Native {
    pub fn of(engine: &Engine) -> Self {
        let mut map: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        let all = engine.collect_fn_metadata(None, |f| Some((f.metadata.name.to_string(), f.metadata.num_params)), true);
        for (name, count) in all {
            // `get$x`, `index$get$`: property and indexer accessors, not callable by name.
            if !name.contains('$') {
                map.entry(name).or_default().insert(count);
            }
        }
        Native(map)
    }

    pub fn counts(&self, name: &str) -> Option<&BTreeSet<usize>> {
        self.0.get(name)
    }

    pub fn is_keyword(name: &str) -> bool {
        KEYWORDS.contains(&name)
    }

    /// Every name, for "did you mean" (operators left out).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0
            .keys()
            .map(String::as_str)
            .filter(|n| n.starts_with(|c: char| c.is_alphabetic() || c == '_'))
            .chain(KEYWORDS.iter().copied())
    }
}

/// A function defined in a script: `fn name(params)`.
#[derive(Clone, Debug)]
pub struct ScriptFn {
    pub name: String,
    pub params: Vec<String>,
    pub private: bool,
}

impl ScriptFn {
    pub fn signature(&self) -> String {
        format!("fn {}({})", self.name, self.params.join(", "))
    }

    /// The script's functions, closures (`anon$...`) left out.
    pub fn of(ast: &AST) -> Vec<ScriptFn> {
        ast.iter_fn_def()
            .filter(|f| !f.name.contains('$'))
            .map(|f| ScriptFn {
                name: f.name.to_string(),
                params: f.params.iter().map(|p| p.to_string()).collect(),
                private: f.access == FnAccess::Private,
            })
            .collect()
    }
}

/// How a primitive may be called, for a message: its signatures, one a line.
pub fn forms_text(p: &Primitive) -> String {
    p.signatures.iter().map(|s| format!("\n    {s}")).collect()
}
