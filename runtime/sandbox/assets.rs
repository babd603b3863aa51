//! Finds the Kubernetes binaries a sandbox cluster runs, per version.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The version `--kube-version current` stands for; `scripts/kube-assets.sh` builds the same one
/// (both read `KUBE_VERSION` of `scripts/versions.env`; a test in `pinned.rs` keeps them equal).
pub const CURRENT_VERSION: &str = "1.37.2";

/// The version `--kube-version oldest` stands for: the suite's second run, the oldest
/// Kubernetes our users run that builds from the module proxy (`KUBE_OLDEST_VERSION`).
pub const OLDEST_VERSION: &str = "1.30.4";

/// The binaries of one Kubernetes version. `kube-controller-manager` and
/// `kubectl` are optional because an envtest folder (`KUBEBUILDER_ASSETS`)
/// holds only etcd, kube-apiserver and kubectl.
#[derive(Debug, Clone)]
pub struct Assets {
    /// `1.37.2`, or `KUBEBUILDER_ASSETS` when the folder came from there.
    pub version: String,
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: Option<PathBuf>,
    /// Without it (an envtest folder) the sandbox has no nodes.
    pub kube_scheduler: Option<PathBuf>,
    pub kubectl: Option<PathBuf>,
}

impl Assets {
    /// `KUBEBUILDER_ASSETS` wins (the envtest convention: nothing gets built);
    /// otherwise `~/.cache/mesh-run/kube/<version>/bin` (or `$MESH_RUN_CACHE/kube/...`).
    pub fn locate(version: &str) -> Result<Assets> {
        let version = resolve_version(version);
        if let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS").filter(|d| !d.is_empty()) {
            return Assets::in_dir(Path::new(&dir), "KUBEBUILDER_ASSETS", &version);
        }
        Assets::in_dir(&cache_dir(&version), &version, &version)
    }

    /// The binaries in `dir`; `label` names the source in errors.
    fn in_dir(dir: &Path, label: &str, version: &str) -> Result<Assets> {
        let find = |name: &str| Some(dir.join(name)).filter(|p| is_executable(p));
        let (etcd, kube_apiserver) = (find("etcd"), find("kube-apiserver"));
        let missing: Vec<String> = [("etcd", &etcd), ("kube-apiserver", &kube_apiserver)]
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(n, _)| dir.join(n).display().to_string())
            .collect();
        match (etcd, kube_apiserver) {
            (Some(etcd), Some(kube_apiserver)) => Ok(Assets {
                version: label.to_string(),
                etcd,
                kube_apiserver,
                kube_controller_manager: find("kube-controller-manager"),
                kube_scheduler: find("kube-scheduler"),
                kubectl: find("kubectl"),
            }),
            _ => Err(Error::AssetsMissing {
                version: version.to_string(),
                missing: missing.join(", "),
                command: install_command(version),
            }),
        }
    }

    /// Asks the binaries what they support: flags differ between versions,
    /// and a `KUBEBUILDER_ASSETS` folder says nothing about its version.
    pub fn probe(&self) -> Result<Capabilities> {
        let etcd_help = std::process::Command::new(&self.etcd).arg("--help").output();
        let etcd_help = etcd_help.map(|o| [o.stdout, o.stderr].concat()).unwrap_or_default();
        Ok(Capabilities {
            apiserver_minor: self.apiserver_minor()?,
            etcd_unsafe_no_fsync: String::from_utf8_lossy(&etcd_help).contains("unsafe-no-fsync"),
        })
    }

    /// The Kubernetes minor version of `kube-apiserver` (`Kubernetes v1.37.2` → 37).
    fn apiserver_minor(&self) -> Result<u32> {
        let output = std::process::Command::new(&self.kube_apiserver)
            .arg("--version")
            .output()
            .map_err(|e| Error::io(&self.kube_apiserver, e))?;
        let text = String::from_utf8_lossy(&output.stdout);
        parse_minor(&text).ok_or_else(|| Error::Sandbox {
            message: format!("{} --version printed {:?}", self.kube_apiserver.display(), text.trim()),
        })
    }

    /// The folder holding the binaries (for a `kubectl` next to them, in tests).
    pub fn bin_dir(&self) -> &Path {
        self.kube_apiserver.parent().unwrap_or(Path::new("."))
    }
}

/// What the binaries of one version can do.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    pub apiserver_minor: u32,
    /// etcd 3.5+ can skip fsync, which saves seconds on slow disks.
    pub etcd_unsafe_no_fsync: bool,
}

/// `current`, `oldest` → the concrete version; anything else is taken as given.
pub fn resolve_version(version: &str) -> String {
    match version {
        "" | "current" => CURRENT_VERSION.to_string(),
        "oldest" => OLDEST_VERSION.to_string(),
        v => v.trim_start_matches('v').to_string(),
    }
}

/// `Kubernetes v1.20.2` → 20.
fn parse_minor(version_output: &str) -> Option<u32> {
    let version = version_output.split_whitespace().find(|w| w.starts_with("v1."))?;
    version.split('.').nth(1)?.parse().ok()
}

/// The one command that installs `version`.
pub fn install_command(version: &str) -> String {
    let arg = match version {
        CURRENT_VERSION => "current",
        OLDEST_VERSION => "oldest",
        other => other,
    };
    format!("scripts/kube-assets.sh {arg}")
}

/// `$MESH_RUN_CACHE`, else `~/.cache/mesh-run`: where the scripts put what they build.
pub fn cache_root() -> PathBuf {
    std::env::var_os("MESH_RUN_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/mesh-run")))
        .unwrap_or_else(|| PathBuf::from(".cache/mesh-run"))
}

fn cache_dir(version: &str) -> PathBuf {
    cache_root().join("kube").join(version).join("bin")
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_resolves_to_the_built_version() {
        assert_eq!(resolve_version("current"), CURRENT_VERSION);
        assert_eq!(resolve_version("oldest"), OLDEST_VERSION);
        assert_eq!(resolve_version("v1.30.4"), "1.30.4");
    }

    #[test]
    fn minor_version_comes_from_the_version_line() {
        assert_eq!(parse_minor("Kubernetes v1.37.2\n"), Some(37));
        assert_eq!(parse_minor("Kubernetes v1.20.5+really1.20.2"), Some(20));
        assert_eq!(parse_minor("garbage"), None);
    }

    #[test]
    fn missing_binaries_name_the_install_command() {
        let empty = tempfile::tempdir().unwrap();
        let err = Assets::in_dir(empty.path(), "1.31.0", "1.31.0").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("scripts/kube-assets.sh 1.31.0"), "{text}");
        assert!(text.contains("kube-apiserver"), "{text}");
        assert_eq!(install_command(CURRENT_VERSION), "scripts/kube-assets.sh current");
        assert_eq!(install_command(OLDEST_VERSION), "scripts/kube-assets.sh oldest");
    }

    /// An envtest folder (KUBEBUILDER_ASSETS) needs only etcd and kube-apiserver.
    #[test]
    fn an_envtest_folder_with_etcd_and_apiserver_is_enough() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for name in ["etcd", "kube-apiserver"] {
            let p = dir.path().join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let assets = Assets::in_dir(dir.path(), "KUBEBUILDER_ASSETS", "1.37.2").unwrap();
        assert_eq!(assets.version, "KUBEBUILDER_ASSETS");
        assert_eq!(assets.kube_apiserver, dir.path().join("kube-apiserver"));
        assert!(assets.kube_controller_manager.is_none() && assets.kubectl.is_none() && assets.kube_scheduler.is_none());
    }
}
