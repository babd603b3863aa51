//! Resolving `import` in playbooks: `import "mesh/istio"` is the stdlib (the
//! embedded one, or the folder given with `--stdlib`); any other path is a
//! file relative to the importing script's folder (the playbook's folder for
//! the playbook and the built-in modules). Every file loaded is recorded
//! (watch mode watches them) with its text (diagnostics quote it). A resolver
//! lives for one run, so a rerun really reloads edited modules.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

use crate::stdlib;

/// Texts of every script of a run, by the name errors use for them.
#[derive(Default, Clone)]
pub struct Sources(Arc<Mutex<HashMap<String, String>>>);

impl Sources {
    pub fn insert(&self, name: &str, text: &str) {
        self.0.lock().expect("sources lock").insert(name.to_string(), text.to_string());
    }
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.lock().expect("sources lock").get(name).cloned()
    }
}

pub struct Resolver {
    base_dir: PathBuf,
    /// `--stdlib DIR` / `$MESH_RUN_STDLIB`: read before the embedded stdlib.
    stdlib_dir: Option<PathBuf>,
    pub sources: Sources,
    /// Files on disk the run imported, for watch mode.
    pub files: Arc<Mutex<Vec<PathBuf>>>,
    cache: Mutex<HashMap<String, Shared<Module>>>,
}

impl Resolver {
    pub fn new(base_dir: &Path, stdlib_dir: Option<&Path>, sources: Sources) -> Self {
        Resolver {
            base_dir: base_dir.to_path_buf(),
            stdlib_dir: stdlib_dir.map(Path::to_path_buf),
            sources,
            files: Default::default(),
            cache: Default::default(),
        }
    }

    /// The script text and the name it is known by (a path, or `stdlib/x.rhai` when embedded).
    fn locate(&self, importer: Option<&str>, path: &str) -> Result<(String, String, Option<PathBuf>), String> {
        let with_ext = if path.ends_with(".rhai") {
            path.to_string()
        } else {
            format!("{path}.rhai")
        };
        if let Some(name) = with_ext.strip_prefix("mesh/") {
            let key = name.trim_end_matches(".rhai");
            return match stdlib::find(self.stdlib_dir.as_deref(), name, stdlib::MODULES, key) {
                Some(stdlib::Source::File(p)) => {
                    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                    Ok((text, p.display().to_string(), Some(p)))
                }
                Some(stdlib::Source::Embedded(text)) => Ok((text.to_string(), format!("stdlib/{name}"), None)),
                None => Err(format!(
                    "no stdlib module \"{path}\" (available: {})",
                    stdlib::MODULES
                        .iter()
                        .map(|(k, _)| format!("mesh/{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
        }
        let dir = importer
            .filter(|i| !i.starts_with("stdlib/"))
            .and_then(|i| Path::new(i).parent().map(Path::to_path_buf))
            .unwrap_or_else(|| self.base_dir.clone());
        let p = dir.join(&with_ext);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot import \"{path}\" ({}): {e}", p.display()))?;
        Ok((text, p.display().to_string(), Some(p)))
    }
}

/// For `mesh-run check`: where an import comes from, without running anything.
pub fn locate_for_check(
    base_dir: &Path,
    stdlib_dir: Option<&Path>,
    importer: Option<&str>,
    path: &str,
) -> Result<(String, String), String> {
    let (text, name, _) = Resolver::new(base_dir, stdlib_dir, Sources::default()).locate(importer, path)?;
    Ok((name, text))
}

impl ModuleResolver for Resolver {
    fn resolve(&self, engine: &Engine, source: Option<&str>, path: &str, pos: Position) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let (text, name, file) = self
            .locate(source, path)
            .map_err(|e| Box::new(EvalAltResult::ErrorModuleNotFound(e, pos)))?;
        if let Some(m) = self.cache.lock().expect("cache lock").get(&name) {
            return Ok(m.clone());
        }
        self.sources.insert(&name, &text);
        if let Some(f) = file {
            let mut files = self.files.lock().expect("files lock");
            if !files.contains(&f) {
                files.push(f);
            }
        }
        let mut ast = engine.compile(&text).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                name.clone(),
                Box::new(EvalAltResult::ErrorParsing(*e.0, e.1)),
                pos,
            ))
        })?;
        ast.set_source(name.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(name.clone(), e, pos)))?;
        let module: Shared<Module> = module.into();
        self.cache.lock().expect("cache lock").insert(name, module.clone());
        Ok(module)
    }
}
