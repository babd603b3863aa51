//! What a wait waits for, in kubectl's `--for` syntax, and how one observed
//! object is judged against it. Pure functions: the watch loop lives in watch.rs.

use std::fmt;

use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// `condition=Ready` / `condition=Ready=False`: a status condition with that status
    /// (case-insensitive, as kubectl), observed at the current generation.
    Condition {
        kind: String,
        status: String,
    },
    /// `jsonpath={.a.b}` (present and non-empty) or `jsonpath={.a.b}=value`.
    JsonPath {
        expr: String,
        value: Option<String>,
    },
    Create,
    Delete,
}

impl Check {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::usage(format!(
                "invalid wait condition \"{text}\": {why} (use condition=Ready, condition=Ready=False, jsonpath={{.status.x}}, jsonpath={{.status.x}}=value, create or delete)"
            ))
        };
        if text == "create" {
            return Ok(Check::Create);
        }
        if text == "delete" {
            return Ok(Check::Delete);
        }
        if let Some(rest) = text.strip_prefix("condition=") {
            let (kind, status) = rest.split_once('=').unwrap_or((rest, "True"));
            if kind.is_empty() {
                return Err(bad("the condition type is empty"));
            }
            return Ok(Check::Condition {
                kind: kind.to_string(),
                status: status.to_string(),
            });
        }
        if let Some(rest) = text.strip_prefix("jsonpath=") {
            // The expression ends at the last `}`; `=value` may follow.
            let end = rest.rfind('}').ok_or_else(|| bad("the JSONPath must be in braces"))?;
            let (expr, tail) = rest.split_at(end + 1);
            let value = match tail {
                "" => None,
                t => Some(t.strip_prefix('=').ok_or_else(|| bad("expected = after the JSONPath"))?.to_string()),
            };
            crate::jsonpath::evaluate(expr, &Value::Null)?;
            return Ok(Check::JsonPath {
                expr: expr.to_string(),
                value,
            });
        }
        Err(bad("unknown form"))
    }

    /// Whether `object` (None: it does not exist) satisfies this check.
    pub fn holds(&self, object: Option<&Value>) -> bool {
        match (self, object) {
            (Check::Delete, o) => o.is_none(),
            (_, None) => false,
            (Check::Create, Some(_)) => true,
            (Check::Condition { kind, status }, Some(o)) => condition(o, kind).is_some_and(|c| {
                c.get("status")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case(status))
                    && is_current(o, c)
            }),
            (Check::JsonPath { expr, value }, Some(o)) => {
                let found = crate::jsonpath::evaluate(expr, o).unwrap_or_default();
                match value {
                    None => found.iter().any(|v| !render(v).is_empty()),
                    Some(want) => found.len() == 1 && render(&found[0]) == *want,
                }
            }
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Condition { kind, status } => write!(f, "condition={kind}={status}"),
            Check::JsonPath { expr, value: None } => write!(f, "jsonpath={expr}"),
            Check::JsonPath { expr, value: Some(v) } => write!(f, "jsonpath={expr}={v}"),
            Check::Create => write!(f, "create"),
            Check::Delete => write!(f, "delete"),
        }
    }
}

fn condition<'a>(o: &'a Value, kind: &str) -> Option<&'a Value> {
    o.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(kind)))
}

/// kubectl trusts a condition only if it was observed at the current
/// generation: the condition's own observedGeneration, else the status's.
fn is_current(o: &Value, c: &Value) -> bool {
    let generation = o.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = c
        .get("observedGeneration")
        .and_then(Value::as_i64)
        .or_else(|| o.pointer("/status/observedGeneration").and_then(Value::as_i64));
    match (generation, observed) {
        (Some(g), Some(seen)) => seen >= g,
        _ => true,
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One line saying where an object stands, for progress and timeouts.
pub fn describe_state(object: Option<&Value>, checks: &[Check]) -> String {
    let deleting = checks.contains(&Check::Delete);
    let Some(o) = object else {
        return if deleting { "gone" } else { "does not exist yet" }.to_string();
    };
    let mut parts = Vec::new();
    for check in checks {
        match check {
            Check::Condition { kind, .. } => parts.push(match condition(o, kind) {
                Some(c) => {
                    let get = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
                    let mut s = format!("{}={}", get("type"), get("status"));
                    match (get("reason"), get("message")) {
                        ("", "") => {}
                        (r, "") => s.push_str(&format!(" ({r})")),
                        (r, m) => s.push_str(&format!(" ({r}: {m})")),
                    }
                    s
                }
                None => format!("no {kind} condition yet"),
            }),
            Check::JsonPath { expr, .. } => parts.push(format!("{expr} = {}", shown_value(expr, o))),
            Check::Create => parts.push("exists".into()),
            Check::Delete => parts.push("still exists".into()),
        }
    }
    if let (Some(g), Some(seen)) = (
        o.pointer("/metadata/generation").and_then(Value::as_i64),
        o.pointer("/status/observedGeneration").and_then(Value::as_i64),
    ) && seen < g
    {
        parts.push(format!(
            "observedGeneration {seen} < generation {g} (the controller has not seen the latest change)"
        ));
    }
    parts.join("; ")
}

/// What a wait learned from the server, for its timeout message: a timeout
/// says "does not exist" only when the server said so (issue 15).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Seen {
    /// No answer yet about the object (discovery or its list still pending).
    #[default]
    NoAnswer,
    /// The kind is not served: nothing of it can exist until a CRD provides it.
    KindNotServed(String),
    /// The object as last listed or watched (None: absent).
    Object(Option<Value>),
}

impl Seen {
    pub fn object(&self) -> Option<&Value> {
        match self {
            Seen::Object(o) => o.as_ref(),
            _ => None,
        }
    }

    /// The timeout explanation of what was seen.
    pub fn explain(&self, checks: &[Check]) -> String {
        match self {
            Seen::NoAnswer => {
                "  the API server has not answered about it yet: whether it exists is unknown (is the server overloaded?)".into()
            }
            Seen::KindNotServed(kind) => format!(
                "  its kind \"{kind}\" is not served by this cluster, so no such object can exist yet: no CRD provides it (is the operator that installs it running?)"
            ),
            Seen::Object(o) => explain(o.as_ref(), checks),
        }
    }
}

/// The timeout explanation: does it exist, every condition, generations, JSONPath values.
pub fn explain(object: Option<&Value>, checks: &[Check]) -> String {
    let Some(o) = object else {
        return "  the object does not exist (it was never created, or was deleted)".to_string();
    };
    let mut lines = vec!["  the object exists".to_string()];
    match o.pointer("/status/conditions").and_then(Value::as_array) {
        Some(cs) if !cs.is_empty() => {
            lines.push("  last conditions seen:".into());
            for c in cs {
                let get = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
                lines.push(format!(
                    "    {} = {}  reason: {}  message: {}",
                    get("type"),
                    get("status"),
                    get("reason"),
                    get("message")
                ));
            }
        }
        _ => lines.push("  no status conditions (is the controller that manages it running?)".into()),
    }
    let generation = o.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = o.pointer("/status/observedGeneration").and_then(Value::as_i64);
    match (generation, observed) {
        (Some(g), Some(seen)) if seen < g => lines.push(format!(
            "  observedGeneration {seen} < generation {g}: the controller has not processed the latest spec"
        )),
        (Some(g), Some(seen)) => lines.push(format!("  observedGeneration {seen}, generation {g}")),
        (Some(g), None) => lines.push(format!("  generation {g}, no status.observedGeneration")),
        _ => {}
    }
    for check in checks {
        if let Check::JsonPath { expr, .. } = check {
            lines.push(format!("  last value of {expr}: {}", shown_value(expr, o)));
        }
    }
    lines.join("\n")
}

/// A JSONPath's value as progress lines and timeouts show it, quoted; a
/// Secret's values outside its metadata (tokens, kubeconfigs) are never shown.
fn shown_value(expr: &str, o: &Value) -> String {
    if crate::sensitive::holds_credentials(o) && !expr.trim_start_matches('{').starts_with(".metadata") {
        return "(a Secret's value: not shown)".into();
    }
    format!("\"{}\"", crate::jsonpath::render(expr, o).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_values_are_never_shown() {
        let secret = serde_json::json!({"kind": "Secret", "metadata": {"name": "t"}, "data": {"token": "c2VjcmV0"}});
        assert_eq!(shown_value("{.data.token}", &secret), "(a Secret's value: not shown)");
        assert_eq!(shown_value("{.metadata.name}", &secret), "\"t\"");
        let map = serde_json::json!({"kind": "ConfigMap", "data": {"k": "v"}});
        assert_eq!(shown_value("{.data.k}", &map), "\"v\"");
    }
    use serde_json::json;

    fn istio(status: &str, generation: i64, observed: i64) -> Value {
        json!({"metadata": {"generation": generation}, "status": {"observedGeneration": observed,
            "conditions": [{"type": "Ready", "status": status, "reason": "RemoteIstiodNotReady", "message": "readiness probe on remote istiod failed"}]}})
    }

    #[test]
    fn parses_kubectl_forms() {
        assert_eq!(
            Check::parse("condition=Ready").unwrap(),
            Check::Condition {
                kind: "Ready".into(),
                status: "True".into()
            }
        );
        assert_eq!(
            Check::parse("condition=Ready=False").unwrap(),
            Check::Condition {
                kind: "Ready".into(),
                status: "False".into()
            }
        );
        assert_eq!(Check::parse("create").unwrap(), Check::Create);
        assert_eq!(
            Check::parse("jsonpath={.status.loadBalancer.ingress[0].ip}").unwrap(),
            Check::JsonPath {
                expr: "{.status.loadBalancer.ingress[0].ip}".into(),
                value: None
            }
        );
        assert_eq!(
            Check::parse("jsonpath={.status.phase}=Running").unwrap(),
            Check::JsonPath {
                expr: "{.status.phase}".into(),
                value: Some("Running".into())
            }
        );
        assert!(Check::parse("ready").is_err());
        assert!(Check::parse("jsonpath=.x").is_err());
    }

    #[test]
    fn condition_respects_observed_generation() {
        let ready = Check::parse("condition=Ready").unwrap();
        assert!(ready.holds(Some(&istio("True", 2, 2))));
        assert!(ready.holds(Some(&istio("true", 2, 2))), "status compare is case-insensitive");
        assert!(!ready.holds(Some(&istio("True", 3, 2))), "stale status must not count");
        assert!(!ready.holds(Some(&istio("False", 2, 2))));
        assert!(!ready.holds(None));
        assert!(Check::parse("condition=Ready=False").unwrap().holds(Some(&istio("False", 1, 1))));
    }

    #[test]
    fn state_lines_speak_of_deletion_when_waiting_for_it() {
        assert_eq!(describe_state(None, &[Check::Delete]), "gone");
        assert_eq!(describe_state(Some(&json!({})), &[Check::Delete]), "still exists");
        assert_eq!(describe_state(None, &[Check::Create]), "does not exist yet");
    }

    #[test]
    fn delete_and_create() {
        assert!(Check::Delete.holds(None));
        assert!(!Check::Delete.holds(Some(&json!({}))));
        assert!(Check::Create.holds(Some(&json!({}))));
    }

    #[test]
    fn explanation_names_conditions_and_generations() {
        let text = explain(Some(&istio("False", 3, 2)), &[Check::parse("condition=Ready").unwrap()]);
        assert!(text.contains("Ready = False  reason: RemoteIstiodNotReady"), "{text}");
        assert!(text.contains("observedGeneration 2 < generation 3"), "{text}");
        assert!(explain(None, &[]).contains("does not exist"));
    }

    #[test]
    fn only_a_server_answer_says_does_not_exist() {
        assert!(Seen::Object(None).explain(&[]).contains("does not exist"));
        let unknown = Seen::NoAnswer.explain(&[]);
        assert!(
            !unknown.contains("does not exist") && unknown.contains("has not answered"),
            "{unknown}"
        );
        let unserved = Seen::KindNotServed("gadget".into()).explain(&[]);
        assert!(
            unserved.contains("\"gadget\" is not served") && !unserved.contains("does not exist"),
            "{unserved}"
        );
    }
}
