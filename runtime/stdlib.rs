//! The standard library shipped inside the binary: Rhai modules
//! (`import "mesh/istio"`) and the manifests the procedure fetches by URL
//! (`apply_file("controlplane-gateway.yaml")`), so playbooks run offline.
//! A `stdlib/` folder beside the playbook's folder (the repository layout)
//! or `$MESH_RUN_STDLIB` wins over the embedded copy, so edits are seen —
//! and watched — without rebuilding.

use std::path::{Path, PathBuf};

pub const MODULES: &[(&str, &str)] = &[
    ("istio", include_str!("../stdlib/istio.rhai")),
    ("external", include_str!("../stdlib/external.rhai")),
    ("gateway", include_str!("../stdlib/gateway.rhai")),
    ("teardown", include_str!("../stdlib/teardown.rhai")),
    ("verify", include_str!("../stdlib/verify.rhai")),
    ("istiod", include_str!("../stdlib/istiod.rhai")),
    ("data_plane", include_str!("../stdlib/data_plane.rhai")),
    ("preflight", include_str!("../stdlib/preflight.rhai")),
    ("upgrade", include_str!("../stdlib/upgrade.rhai")),
    ("rotation", include_str!("../stdlib/rotation.rhai")),
];

pub const MANIFESTS: &[(&str, &str)] = &[
    (
        "controlplane-gateway.yaml",
        include_str!("../stdlib/manifests/controlplane-gateway.yaml"),
    ),
    ("ingress-gateway.yaml", include_str!("../stdlib/manifests/ingress-gateway.yaml")),
    ("helloworld.yaml", include_str!("../stdlib/manifests/helloworld.yaml")),
    (
        "helloworld-gateway.yaml",
        include_str!("../stdlib/manifests/helloworld-gateway.yaml"),
    ),
    ("sleep.yaml", include_str!("../stdlib/manifests/sleep.yaml")),
];

/// Where a bundled file comes from: a file on disk, or the embedded copy.
pub enum Source {
    File(PathBuf),
    Embedded(&'static str),
}

/// The on-disk stdlib for playbooks in `base_dir`, if there is one.
pub fn disk_dir(base_dir: &Path) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MESH_RUN_STDLIB") {
        return Some(PathBuf::from(dir));
    }
    let candidate = base_dir.parent()?.join("stdlib");
    candidate.is_dir().then_some(candidate)
}

/// Finds `relative` (e.g. `istio.rhai`, `manifests/sleep.yaml`) in the stdlib.
pub fn find(base_dir: &Path, relative: &str, embedded: &[(&'static str, &'static str)], key: &str) -> Option<Source> {
    if let Some(dir) = disk_dir(base_dir) {
        let p = dir.join(relative);
        if p.is_file() {
            return Some(Source::File(p));
        }
    }
    embedded.iter().find(|(k, _)| *k == key).map(|(_, text)| Source::Embedded(text))
}

pub fn manifest_names() -> Vec<&'static str> {
    MANIFESTS.iter().map(|(k, _)| *k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in stdlib/ is embedded, so the binary works outside the repository.
    #[test]
    fn every_stdlib_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("stdlib");
        for entry in std::fs::read_dir(root.join("manifests")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".yaml") {
                assert!(
                    MANIFESTS.iter().any(|(k, _)| *k == name),
                    "stdlib/manifests/{name} is not in stdlib::MANIFESTS"
                );
            }
        }
        for entry in std::fs::read_dir(&root).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if let Some(stem) = name.strip_suffix(".rhai") {
                assert!(MODULES.iter().any(|(k, _)| *k == stem), "stdlib/{name} is not in stdlib::MODULES");
            }
        }
    }
}
