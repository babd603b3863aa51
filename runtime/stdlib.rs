//! The standard library shipped inside the binary: Rhai modules
//! (`import "mesh/istio"`) and the manifests the procedure fetches by URL
//! (`apply_file("controlplane-gateway.yaml")`), so playbooks run offline.
//! The embedded copy is what runs, wherever the playbook is: code is never
//! picked up from a folder the user did not name (issue 15: a `stdlib/`
//! beside a playbook in a shared temporary folder used to win). Only
//! `--stdlib DIR` / `$MESH_RUN_STDLIB` puts a folder first — announced on
//! stderr — so stdlib edits are seen, and watched, without rebuilding.

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

/// Checks a `--stdlib DIR` / `$MESH_RUN_STDLIB` override and says on stderr
/// that it replaces the built-in stdlib (a run must not change silently).
pub fn announce_override(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!(
            "--stdlib / MESH_RUN_STDLIB: {} is not a folder (give the folder holding istio.rhai and manifests/, or unset it to use the built-in stdlib)",
            dir.display()
        ));
    }
    eprintln!(
        "note: stdlib modules and bundled manifests are read from {} (--stdlib / MESH_RUN_STDLIB) before the built-in ones",
        dir.display()
    );
    Ok(())
}

/// Finds `relative` (e.g. `istio.rhai`, `manifests/sleep.yaml`) in the
/// override folder, if the user gave one, else in the embedded stdlib.
pub fn find(override_dir: Option<&Path>, relative: &str, embedded: &[(&'static str, &'static str)], key: &str) -> Option<Source> {
    if let Some(dir) = override_dir {
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
    /// A `stdlib/` folder beside the playbook's folder is not code the user chose.
    #[test]
    fn only_an_explicit_folder_overrides_the_embedded_stdlib() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("stdlib")).unwrap();
        std::fs::write(root.path().join("stdlib/istio.rhai"), "planted").unwrap();
        assert!(matches!(find(None, "istio.rhai", MODULES, "istio"), Some(Source::Embedded(_))));
        let chosen = root.path().join("stdlib");
        assert!(matches!(find(Some(&chosen), "istio.rhai", MODULES, "istio"), Some(Source::File(p)) if p == chosen.join("istio.rhai")));
        // A file the override lacks still comes from the built-in stdlib.
        assert!(matches!(
            find(Some(&chosen), "verify.rhai", MODULES, "verify"),
            Some(Source::Embedded(_))
        ));
        assert!(
            announce_override(&root.path().join("missing"))
                .unwrap_err()
                .contains("is not a folder")
        );
    }

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
