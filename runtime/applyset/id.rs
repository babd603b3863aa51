//! The names of KEP-3659 (ApplySet), as kubectl writes them, so that kubectl
//! and mesh-run see the same set: the parent's ID label, its annotations and
//! the members' `part-of` label.

use base64::Engine;

/// On every member: the ID of the set it belongs to.
pub const PART_OF: &str = "applyset.kubernetes.io/part-of";
/// On the parent: its own ID.
pub const ID: &str = "applyset.kubernetes.io/id";
/// On the parent: `mesh-run/<version>`; kubectl refuses to touch a set of another tool.
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
/// On the parent: `Kind.group` of every member kind, sorted, comma-separated.
pub const GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
/// On the parent: namespaces holding members, besides the parent's own.
pub const NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";

/// kubectl's `ApplySet.ID()`: `applyset-<base64url(sha256(name.namespace.kind.group))>-v1`.
pub fn applyset_id(name: &str, namespace: &str, kind: &str, group: &str) -> String {
    let unencoded = [name, namespace, kind, group].join(".");
    let hashed = ring::digest::digest(&ring::digest::SHA256, unencoded.as_bytes());
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hashed.as_ref());
    format!("applyset-{encoded}-v1")
}

/// `Kind.group`, or `Kind` for the core group: the KEP's group-kind form.
pub fn group_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

/// The (group, kind) of a `Kind.group` entry.
pub fn split_group_kind(group_kind: &str) -> (&str, &str) {
    match group_kind.split_once('.') {
        Some((kind, group)) => (group, kind),
        None => ("", group_kind),
    }
}

/// A set's parent name from the playbook file and an optional `--instance`:
/// a DNS-1123 subdomain (lowercase; anything else becomes `-`).
pub fn parent_name(playbook_stem: &str, instance: Option<&str>) -> String {
    let clean = |s: &str| -> String {
        let s: String = s
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
            .collect();
        s.trim_matches('-').to_string()
    };
    let stem = Some(clean(playbook_stem))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "playbook".into());
    match instance.map(clean).filter(|s| !s.is_empty()) {
        Some(instance) => format!("{stem}.{instance}"),
        None => stem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_kubectls() {
        // The value Python's hashlib gives for the same recipe; tests/applyset.rs
        // checks the algorithm against kubectl itself on a real server.
        assert_eq!(
            applyset_id("external", "mesh-run", "ConfigMap", ""),
            "applyset-9MOB900YxRKwF2hkjuGwetFrP-YuugpsRKFRD1IO37c-v1"
        );
    }

    #[test]
    fn group_kinds_round_trip() {
        assert_eq!(group_kind("", "Namespace"), "Namespace");
        assert_eq!(group_kind("sailoperator.io", "Istio"), "Istio.sailoperator.io");
        assert_eq!(split_group_kind("Istio.sailoperator.io"), ("sailoperator.io", "Istio"));
        assert_eq!(split_group_kind("Secret"), ("", "Secret"));
    }

    #[test]
    fn parent_names_are_dns_subdomains() {
        assert_eq!(parent_name("external", None), "external");
        assert_eq!(parent_name("external-multi-mesh", Some("Mesh 2")), "external-multi-mesh.mesh-2");
        assert_eq!(parent_name("My_Playbook", Some("")), "my-playbook");
        assert_eq!(parent_name("__", None), "playbook");
    }
}
