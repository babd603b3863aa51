//! Trailing option maps of primitives (`#{ timeout: "3m" }`), checked
//! against the keys the primitive knows, so a typo is an error, not silence.

use std::time::Duration;

use rhai::{Dynamic, Map};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Deserializes `map` into `T`, first rejecting keys not in `valid`.
pub fn parse<T: DeserializeOwned + Default>(primitive: &str, map: Option<Map>, valid: &[&str]) -> Result<T> {
    let Some(map) = map else { return Ok(T::default()) };
    if let Some(bad) = map.keys().find(|k| !valid.contains(&k.as_str())) {
        return Err(Error::usage(format!(
            "unknown option \"{bad}\" for {primitive}{} (valid options: {})",
            crate::check::suggest::hint(bad, valid.iter().copied()),
            valid.join(", ")
        )));
    }
    let map = Dynamic::from_map(map);
    crate::rhai_json::check_depth(&map, &format!("the options of {primitive}"))?;
    rhai::serde::from_dynamic(&map).map_err(|e| {
        Error::usage(format!(
            "bad option for {primitive}: {}",
            e.to_string().replace("ErrorMismatchDataType", "wrong type")
        ))
    })
}

/// "3m", "90s", "1h30m" or a number of seconds.
pub fn duration(value: &Option<serde_json::Value>, default: Duration, what: &str) -> Result<Duration> {
    match value {
        None => Ok(default),
        // try_: `1e300` seconds panicked in from_secs_f64 (found by fuzzing).
        Some(serde_json::Value::Number(n)) => n
            .as_f64()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| Error::usage(format!("{what}: {n} is not a duration"))),
        Some(serde_json::Value::String(s)) => humantime::parse_duration(s)
            .map_err(|e| Error::usage(format!("{what}: \"{s}\" is not a duration ({e}); use e.g. \"90s\", \"3m\""))),
        Some(other) => Err(Error::usage(format!("{what}: {other} is not a duration; use e.g. \"90s\", \"3m\""))),
    }
}

/// A string or an array of strings, as one list.
pub fn one_or_many(value: &Option<serde_json::Value>) -> Vec<String> {
    match value {
        None => vec![],
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            .collect(),
        Some(other) => vec![other.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default, Debug)]
    struct Opts {
        timeout: Option<serde_json::Value>,
    }

    #[test]
    fn unknown_keys_name_the_valid_ones() {
        let mut m = Map::new();
        m.insert("timout".into(), Dynamic::from("3m"));
        let err = parse::<Opts>("wait", Some(m), &["for", "timeout"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown option \"timout\" for wait; did you mean \"timeout\"? (valid options: for, timeout)"
        );
        let mut m = Map::new();
        m.insert("timeout".into(), Dynamic::from("3m"));
        let opts = parse::<Opts>("wait", Some(m), &["for", "timeout"]).unwrap();
        assert_eq!(opts.timeout, Some(serde_json::Value::String("3m".into())));
    }

    #[test]
    fn durations() {
        let d = |v: serde_json::Value| duration(&Some(v), Duration::ZERO, "timeout");
        assert_eq!(d("3m".into()).unwrap(), Duration::from_secs(180));
        assert_eq!(d(90.into()).unwrap(), Duration::from_secs(90));
        assert!(d("soon".into()).unwrap_err().to_string().contains("not a duration"));
        assert!(d((-1).into()).unwrap_err().to_string().contains("not a duration"));
        assert_eq!(
            d(serde_json::json!(1e300)).unwrap_err().to_string(),
            "timeout: 1e+300 is not a duration"
        );
        assert_eq!(duration(&None, Duration::from_secs(5), "t").unwrap(), Duration::from_secs(5));
    }
}
