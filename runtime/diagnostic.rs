//! Turns what a failed run left (a Rhai error, possibly nested through
//! module functions) into one mesh-run `Error` with its places, and draws it
//! once as a code frame at the playbook line — and at the module line when
//! the failure happened inside a module.

use std::sync::Arc;

use rhai::{EvalAltResult, Position};

use crate::bridge::{Bridge, ScriptError};
use crate::error::Error;
use crate::modules::Sources;

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub source: String,
    pub line: usize,
    pub column: usize,
}

pub struct Diagnostic {
    pub error: Arc<Error>,
    /// Outermost (the playbook line) first, the failing line last.
    pub frames: Vec<Frame>,
}

impl Diagnostic {
    pub fn from_rhai(err: &EvalAltResult, playbook: &str, bridge: Option<&Bridge>) -> Self {
        let mut frames = Vec::new();
        let mut source = playbook.to_string();
        let mut current = err;
        loop {
            match current {
                EvalAltResult::ErrorInFunctionCall(_, src, inner, pos) | EvalAltResult::ErrorInModule(src, inner, pos) => {
                    push(&mut frames, &source, *pos);
                    if !src.is_empty() {
                        source = src.clone();
                    }
                    current = inner;
                }
                leaf => {
                    push(&mut frames, &source, leaf.position());
                    return Diagnostic {
                        error: leaf_error(leaf, bridge),
                        frames,
                    };
                }
            }
        }
    }

    pub fn plain(error: Error) -> Self {
        Diagnostic {
            error: Arc::new(error),
            frames: vec![],
        }
    }

    /// `error[kind]: message`, then a code frame per place.
    pub fn render(&self, sources: &Sources) -> String {
        let mut out = format!("error[{}]: {}", self.error.kind(), self.error);
        for (i, f) in self.frames.iter().enumerate() {
            let arrow = if i == 0 { "-->" } else { ":::" };
            let note = if i == 0 || self.frames.len() < 2 {
                ""
            } else {
                "  (where it failed, inside the function called above)"
            };
            out.push_str(&format!("\n  {arrow} {}:{}:{}{note}", f.source, f.line, f.column));
            if let Some(text) = sources.get(&f.source)
                && let Some(line) = text.lines().nth(f.line.saturating_sub(1))
            {
                let n = f.line.to_string();
                let pad = " ".repeat(n.len());
                out.push_str(&format!(
                    "\n {pad} |\n {n} | {line}\n {pad} | {}^",
                    " ".repeat(f.column.saturating_sub(1))
                ));
            }
        }
        out
    }

    /// The place errors are reported at: the outermost frame (the playbook line).
    pub fn location(&self) -> Option<&Frame> {
        self.frames.first()
    }
}

fn push(frames: &mut Vec<Frame>, source: &str, pos: Position) {
    if let (Some(line), col) = (pos.line(), pos.position()) {
        let f = Frame {
            source: source.to_string(),
            line,
            column: col.unwrap_or(1),
        };
        if frames.last() != Some(&f) {
            frames.push(f);
        }
    }
}

fn leaf_error(leaf: &EvalAltResult, bridge: Option<&Bridge>) -> Arc<Error> {
    match leaf {
        EvalAltResult::ErrorRuntime(value, _) => {
            if let Some(e) = value.clone().try_cast::<ScriptError>() {
                return e.0;
            }
            let message = value.clone().into_string().unwrap_or_else(|_| value.to_string());
            Arc::new(Error::Thrown { message })
        }
        EvalAltResult::ErrorTerminated(..) => Arc::new(
            bridge
                .map(Bridge::stop_error)
                .unwrap_or(Error::Interrupted { place: String::new() }),
        ),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => Arc::new(Error::Script {
            message: format!("unknown function or wrong arguments: {sig} (see `mesh-run doc` for every primitive and its forms)"),
        }),
        EvalAltResult::ErrorModuleNotFound(m, _) => Arc::new(Error::Script {
            message: format!("module not found: {m}"),
        }),
        other => {
            let mut message = other.to_string();
            // Rhai appends " (line N, position M)"; the frame shows that.
            if let Some(i) = message.rfind(" (line ") {
                message.truncate(i);
            }
            Arc::new(Error::Script { message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_points_at_line_and_column() {
        let engine = rhai::Engine::new();
        let text = "let a = 1;\nlet b = (;\n";
        let err = engine.compile(text).unwrap_err();
        let rhai_err: EvalAltResult = EvalAltResult::ErrorParsing(*err.0, err.1);
        let d = Diagnostic::from_rhai(&rhai_err, "p.rhai", None);
        let sources = Sources::default();
        sources.insert("p.rhai", text);
        let out = d.render(&sources);
        assert!(out.starts_with("error[script]:"), "{out}");
        assert!(out.contains("--> p.rhai:2:"), "{out}");
        assert!(out.contains("2 | let b = (;"), "{out}");
    }

    #[test]
    fn errors_in_module_functions_show_both_places() {
        let inner = EvalAltResult::ErrorRuntime("boom".into(), Position::new(3, 5));
        let outer = EvalAltResult::ErrorInFunctionCall("f".into(), "stdlib/istio.rhai".into(), Box::new(inner), Position::new(10, 1));
        let d = Diagnostic::from_rhai(&outer, "play.rhai", None);
        assert_eq!(d.frames.len(), 2);
        assert_eq!(
            d.frames[0],
            Frame {
                source: "play.rhai".into(),
                line: 10,
                column: 1
            }
        );
        assert_eq!(
            d.frames[1],
            Frame {
                source: "stdlib/istio.rhai".into(),
                line: 3,
                column: 5
            }
        );
        assert_eq!(d.error.kind(), "thrown");
    }
}
