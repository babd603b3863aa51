//! How a failed API response becomes the error a user can act on: the HTTP
//! status and the server's reason in words, never a raw response body.

use http::StatusCode;
use serde_json::Value;

use super::client::{ClusterClient, Response};
use crate::error::Error;

impl ClusterClient {
    /// Turns a failed response into the error a user can act on.
    pub fn api_error(&self, res: &Response, object: &str, action: &str) -> Error {
        let message = res
            .body
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| status_in_words(res.status, &res.body));
        match res.status {
            StatusCode::CONFLICT if reason(&res.body) == Some("Conflict") && action == "apply" => Error::Conflict {
                cluster: self.name.clone(),
                object: object.to_string(),
                fields: conflict_fields(&res.body, &message),
            },
            StatusCode::NOT_FOUND => Error::NotFound {
                cluster: self.name.clone(),
                object: object.to_string(),
            },
            StatusCode::UNAUTHORIZED => Error::Api {
                cluster: self.name.clone(),
                object: object.to_string(),
                message: format!(
                    "{action} refused (HTTP 401 Unauthorized): the API server did not accept the credentials of context {} (expired or wrong token or client certificate: refresh the kubeconfig)",
                    self.name
                ),
            },
            StatusCode::FORBIDDEN if is_namespace_terminating(&res.body) => Error::Api {
                cluster: self.name.clone(),
                object: object.to_string(),
                message: format!(
                    "{action} refused (HTTP 403 Forbidden, namespace terminating): {message}; wait until it is gone (ensure_namespace does, then creates it again)"
                ),
            },
            StatusCode::FORBIDDEN => Error::Api {
                cluster: self.name.clone(),
                object: object.to_string(),
                message: format!("{action} not allowed (HTTP 403 Forbidden): {message}"),
            },
            _ => {
                let message = if message.contains("field not declared in schema") {
                    format!("{message} (the manifest has a field the schema does not know: check its spelling and nesting)")
                } else {
                    message
                };
                Error::Rejected {
                    cluster: self.name.clone(),
                    object: object.to_string(),
                    action: action.to_string(),
                    message,
                }
            }
        }
    }
}

fn reason(body: &Value) -> Option<&str> {
    body.get("reason").and_then(Value::as_str)
}

/// A 403 because the namespace is being deleted (the NamespaceLifecycle admission plugin).
pub fn is_namespace_terminating(body: &Value) -> bool {
    let causes = body.pointer("/details/causes").and_then(Value::as_array);
    causes
        .into_iter()
        .flatten()
        .any(|c| c.get("reason").and_then(Value::as_str) == Some("NamespaceTerminating"))
        || body
            .get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| m.contains("because it is being terminated"))
}

/// `HTTP 503 Service Unavailable (reason ServiceUnavailable)` for a response
/// without a Status message; a body that is not a Status is described, not echoed.
pub fn status_in_words(status: StatusCode, body: &Value) -> String {
    let line = format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("(no standard reason)")
    );
    match body {
        Value::Null => format!("{line} (empty answer)"),
        Value::Object(_) if body.get("kind").and_then(Value::as_str) == Some("Status") => match reason(body) {
            Some(r) if !r.is_empty() => format!("{line} (reason {r})"),
            _ => line,
        },
        Value::String(text) => {
            let first: String = text
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_control())
                .take(120)
                .collect();
            format!("{line} (not a Kubernetes answer; it begins: \"{first}\")")
        }
        _ => format!("{line} (a JSON answer that is not a Kubernetes Status)"),
    }
}

/// Names the conflicting fields the API server listed in the Status causes.
fn conflict_fields(body: &Value, message: &str) -> String {
    let fields: Vec<String> = body
        .pointer("/details/causes")
        .and_then(Value::as_array)
        .map(|causes| {
            causes
                .iter()
                .map(|c| {
                    let field = c.get("field").and_then(Value::as_str).unwrap_or("?");
                    let msg = c.get("message").and_then(Value::as_str).unwrap_or("");
                    format!("{field} ({msg})")
                })
                .collect()
        })
        .unwrap_or_default();
    if fields.is_empty() {
        message.to_string()
    } else {
        fields.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_fields_lists_each_cause() {
        let body = serde_json::json!({"details": {"causes": [
            {"field": ".data.a", "message": "conflict with \"kubectl\""},
            {"field": ".data.b", "message": "conflict with \"kubectl\""}
        ]}});
        let out = conflict_fields(&body, "fallback");
        assert_eq!(out, ".data.a (conflict with \"kubectl\"), .data.b (conflict with \"kubectl\")");
        assert_eq!(conflict_fields(&serde_json::json!({}), "fallback"), "fallback");
    }

    #[test]
    fn statuses_are_put_in_words_not_echoed() {
        let status = serde_json::json!({"kind": "Status", "status": "Failure", "reason": "ServiceUnavailable", "code": 503});
        assert_eq!(
            status_in_words(StatusCode::SERVICE_UNAVAILABLE, &status),
            "HTTP 503 Service Unavailable (reason ServiceUnavailable)"
        );
        let other = serde_json::json!({"secret": "do-not-echo"});
        let words = status_in_words(StatusCode::BAD_GATEWAY, &other);
        assert!(!words.contains("do-not-echo") && !words.contains('{'), "{words}");
        let html = Value::String("<html>proxy error\nline two".into());
        assert_eq!(
            status_in_words(StatusCode::BAD_GATEWAY, &html),
            "HTTP 502 Bad Gateway (not a Kubernetes answer; it begins: \"<html>proxy error\")"
        );
    }

    #[test]
    fn a_terminating_namespace_is_recognised() {
        // What kube-apiserver's NamespaceLifecycle admission answers.
        let body = serde_json::json!({"kind": "Status", "reason": "Forbidden", "code": 403,
            "message": "configmaps \"a\" is forbidden: unable to create new content in namespace x because it is being terminated",
            "details": {"name": "a", "kind": "configmaps", "causes": [{"reason": "NamespaceTerminating", "message": "namespace x is being terminated", "field": "metadata.namespace"}]}});
        assert!(is_namespace_terminating(&body));
        assert!(!is_namespace_terminating(
            &serde_json::json!({"reason": "Forbidden", "message": "user cannot create"})
        ));
    }
}
