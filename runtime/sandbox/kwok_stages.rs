//! The stages kwok plays in a sandbox: kwok's own (`stages.yaml` of the test
//! bed), except that istiod Pods (`app=istiod`) come up Running with an IP but
//! not Ready. A real istiod runs for each of them (`istiod/`), and its
//! `/ready` alone decides their readiness, as a kubelet's probe would.

use serde_json::{Value, json};

/// The label of the Pods whose readiness kwok leaves alone.
pub const ISTIOD_POD_LABEL: (&str, &str) = ("app", "istiod");

/// kwok's stage that makes Pods Running and Ready.
const POD_READY: &str = "pod-ready";

/// `stages` (kwok's multi-document stage file) with the `pod-ready` stage
/// split in two: the original for every Pod but istiod's, and a copy for
/// istiod's that leaves `Ready`, `ContainersReady` and the containers' `ready`
/// false. Errors name what of kwok's stage was not found.
pub fn with_istiod_readiness(stages: &str) -> Result<String, String> {
    let mut out = Vec::new();
    let mut found = false;
    for document in split_documents(stages) {
        let parsed: Option<Value> = serde_saphyr::from_str(&document).ok();
        match parsed {
            Some(stage) if stage.pointer("/metadata/name") == Some(&json!(POD_READY)) => {
                found = true;
                let (others, istiod) = split_pod_ready(stage)?;
                for stage in [others, istiod] {
                    let text = serde_json::to_string_pretty(&stage).map_err(|e| e.to_string())?;
                    // JSON is YAML: kwok reads it like the rest of the file.
                    out.push(format!("{text}\n"));
                }
            }
            _ => out.push(document),
        }
    }
    if !found {
        return Err(format!("kwok's stage file has no {POD_READY:?} stage"));
    }
    Ok(out.join("---\n"))
}

/// The documents of a YAML stream, each with its trailing newline.
fn split_documents(text: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
}

fn split_pod_ready(stage: Value) -> Result<(Value, Value), String> {
    let (key, value) = ISTIOD_POD_LABEL;
    let label = |operator: &str| json!({"key": format!(".metadata.labels.{key}"), "operator": operator, "values": [value]});
    let mut others = stage.clone();
    push_expression(&mut others, label("NotIn"))?;
    let mut istiod = stage;
    push_expression(&mut istiod, label("In"))?;
    istiod["metadata"]["name"] = json!(format!("{POD_READY}-{value}"));
    let template = istiod
        .pointer_mut("/spec/next/statusTemplate")
        .ok_or(format!("kwok's {POD_READY:?} stage has no spec.next.statusTemplate"))?;
    let text = template.as_str().unwrap_or_default();
    *template = json!(not_ready(text)?);
    Ok((others, istiod))
}

fn push_expression(stage: &mut Value, expression: Value) -> Result<(), String> {
    let expressions = stage
        .pointer_mut("/spec/selector/matchExpressions")
        .and_then(Value::as_array_mut)
        .ok_or(format!("kwok's {POD_READY:?} stage has no spec.selector.matchExpressions"))?;
    expressions.push(expression);
    Ok(())
}

/// kwok's status template with the two readiness conditions and the
/// containers' `ready` false (init containers keep theirs: they completed).
fn not_ready(template: &str) -> Result<String, String> {
    let mut text = template.to_string();
    for condition in ["Ready", "ContainersReady"] {
        text = replace_once(
            &text,
            &format!("status: \"True\"\n  type: {condition}\n"),
            &format!("status: \"False\"\n  type: {condition}\n"),
        )?;
    }
    let start = text
        .find("\ncontainerStatuses:")
        .ok_or("no containerStatuses in kwok's pod-ready template")?;
    let end = text[start..].find("\ninitContainerStatuses:").map_or(text.len(), |i| start + i);
    let containers = replace_once(&text[start..end], "ready: true\n", "ready: false\n")?;
    Ok(format!("{}{containers}{}", &text[..start], &text[end..]))
}

fn replace_once(text: &str, from: &str, to: &str) -> Result<String, String> {
    if text.matches(from).count() != 1 {
        return Err(format!("kwok's pod-ready template does not hold {from:?} exactly once"));
    }
    Ok(text.replacen(from, to, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kwok v0.8.0's `kustomize/stage/pod/fast/pod-ready.yaml`, shortened, between two other stages.
    const STAGES: &str = r#"# from sigs.k8s.io/kwok@v0.8.0 kustomize/stage/node/fast/node-initialize.yaml
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
---
# from sigs.k8s.io/kwok@v0.8.0 kustomize/stage/pod/fast/pod-ready.yaml
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      {{ $now := Now }}

      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady

      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
      {{ end }}

      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
      {{ end }}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
---
"#;

    fn stages() -> Vec<Value> {
        let text = with_istiod_readiness(STAGES).unwrap();
        split_documents(&text)
            .iter()
            .filter_map(|d| serde_saphyr::from_str::<Value>(d).ok())
            .filter(|v| v.is_object())
            .collect()
    }

    #[test]
    fn istiod_pods_get_a_pod_ready_stage_of_their_own_that_leaves_them_not_ready() {
        let stages = stages();
        let names: Vec<&str> = stages.iter().filter_map(|s| s["metadata"]["name"].as_str()).collect();
        assert_eq!(names, ["node-initialize", "pod-ready", "pod-ready-istiod", "pod-delete"]);
        let expressions = |i: usize| stages[i]["spec"]["selector"]["matchExpressions"].clone();
        assert_eq!(
            expressions(1)[1],
            json!({"key": ".metadata.labels.app", "operator": "NotIn", "values": ["istiod"]})
        );
        assert_eq!(
            expressions(2)[1],
            json!({"key": ".metadata.labels.app", "operator": "In", "values": ["istiod"]})
        );
        assert_eq!(expressions(1)[0], expressions(2)[0], "otherwise the same selector");

        let template = |i: usize| stages[i]["spec"]["next"]["statusTemplate"].as_str().unwrap().to_string();
        let (others, istiod) = (template(1), template(2));
        assert!(others.contains("status: \"True\"\n  type: Ready\n"), "{others}");
        assert!(istiod.contains("status: \"True\"\n  type: Initialized\n"), "{istiod}");
        assert!(istiod.contains("status: \"False\"\n  type: Ready\n"), "{istiod}");
        assert!(istiod.contains("status: \"False\"\n  type: ContainersReady\n"), "{istiod}");
        let (containers, init) = istiod.split_once("initContainerStatuses:").unwrap();
        assert!(
            containers.contains("ready: false\n") && !containers.contains("ready: true"),
            "{containers}"
        );
        assert!(init.contains("ready: true\n"), "{init}");
        assert!(istiod.ends_with("phase: Running\n"), "{istiod}");
    }

    #[test]
    fn a_stage_file_without_pod_ready_is_an_error() {
        let error = with_istiod_readiness("kind: Stage\nmetadata:\n  name: pod-delete\n").unwrap_err();
        assert!(error.contains("no \"pod-ready\" stage"), "{error}");
    }
}
