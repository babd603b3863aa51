//! Rhai values as JSON, at the primitives' boundary. serde's conversion
//! recurses once per level, and a script can nest values 100,000 levels deep
//! within the engine's size limits: found by fuzzing, `cp.apply(a)` with `a`
//! nested 1,000 deep overflowed the playbook thread's stack and aborted
//! mesh-run. The depth is checked first, with bounded recursion.

use rhai::Dynamic;
use serde_json::Value;

use crate::error::{Error, Result};

/// As deep as serde_json reads JSON (an API server's answer included);
/// Kubernetes objects nest far less.
pub const MAX_DEPTH: usize = 128;

/// `value` as JSON; a usage error when it nests deeper than [`MAX_DEPTH`].
pub fn to_json(value: &Dynamic, what: &str) -> Result<Value> {
    check_depth(value, what)?;
    rhai::serde::from_dynamic(value).map_err(|e| Error::usage(format!("{what}: {e}")))
}

/// A usage error when `value` nests deeper than [`MAX_DEPTH`].
pub fn check_depth(value: &Dynamic, what: &str) -> Result<()> {
    if deeper_than(value, MAX_DEPTH) {
        return Err(Error::usage(format!(
            "{what} nests arrays and maps more than {MAX_DEPTH} levels deep; Kubernetes objects and options never do"
        )));
    }
    Ok(())
}

/// Whether arrays and maps nest more than `limit` levels (a scalar: 0, `[1]`: 1).
/// Recurses at most `limit + 1` levels.
fn deeper_than(value: &Dynamic, limit: usize) -> bool {
    if let Ok(array) = value.as_array_ref() {
        return limit == 0 || array.iter().any(|v| deeper_than(v, limit - 1));
    }
    if let Ok(map) = value.as_map_ref() {
        return limit == 0 || map.values().any(|v| deeper_than(v, limit - 1));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Dynamic {
        let mut value = Dynamic::from(1_i64);
        for i in 0..levels {
            value = if i % 2 == 0 {
                Dynamic::from_array(vec![value])
            } else {
                Dynamic::from_map([("a".into(), value)].into_iter().collect())
            };
        }
        value
    }

    #[test]
    fn depth_is_bounded_before_converting() {
        assert!(!deeper_than(&Dynamic::from(1_i64), 0));
        assert!(deeper_than(&nested(1), 0));
        assert!(!deeper_than(&nested(3), 3) && deeper_than(&nested(4), 3));
        assert!(to_json(&nested(MAX_DEPTH), "x").is_ok());
        // Deep enough to overflow this 2 MB test thread in serde's recursion
        // (unoptimized): refused in bounded steps.
        let err = to_json(&nested(1_000), "apply's manifests").unwrap_err();
        assert_eq!(err.kind(), "usage");
        assert!(
            err.to_string()
                .starts_with("apply's manifests nests arrays and maps more than 128 levels"),
            "{err}"
        );
    }
}
