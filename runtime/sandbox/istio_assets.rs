//! Finds the Istio side of the test bed that `scripts/istio-assets.sh`
//! builds: istioctl, pilot-discovery and our chart renderer from the
//! istio.io/istio snapshot, and kwok with its stage file.

use std::path::{Path, PathBuf};

use super::assets::cache_root;
use super::pinned::pinned;
use crate::error::{Error, Result};

/// The one command that builds everything here.
pub const INSTALL_COMMAND: &str = "scripts/istio-assets.sh";

#[derive(Debug, Clone)]
pub struct IstioAssets {
    /// The istio.io/istio module version the charts and binaries come from.
    pub snapshot: String,
    pub istio_render: PathBuf,
    pub istioctl: PathBuf,
    pub pilot_discovery: PathBuf,
    pub kwok: PathBuf,
    /// kwok's stages (node initialize and heartbeat, pod ready/complete/delete).
    pub kwok_stages: PathBuf,
}

impl IstioAssets {
    /// `~/.cache/mesh-run/istio/<ISTIO_MODULE>/bin` and `~/.cache/mesh-run/kwok/<KWOK_VERSION>`
    /// (or under `$MESH_RUN_CACHE`); one error naming every missing file and the command.
    pub fn locate() -> Result<IstioAssets> {
        IstioAssets::in_dirs(&cache_root(), pinned("ISTIO_MODULE"), pinned("KWOK_VERSION"))
    }

    fn in_dirs(root: &Path, istio: &str, kwok: &str) -> Result<IstioAssets> {
        let bin = root.join("istio").join(istio).join("bin");
        let kwok_dir = root.join("kwok").join(kwok);
        let assets = IstioAssets {
            snapshot: istio.to_string(),
            istio_render: bin.join("istio-render"),
            istioctl: bin.join("istioctl"),
            pilot_discovery: bin.join("pilot-discovery"),
            kwok: kwok_dir.join("kwok"),
            kwok_stages: kwok_dir.join("stages.yaml"),
        };
        let files = [
            &assets.istio_render,
            &assets.istioctl,
            &assets.pilot_discovery,
            &assets.kwok,
            &assets.kwok_stages,
        ];
        require_files(&format!("Istio {istio} and kwok {kwok} test-bed binaries"), INSTALL_COMMAND, &files)?;
        Ok(assets)
    }
}

/// One error naming every missing file of `what` and the command that builds them.
pub fn require_files(what: &str, command: &str, files: &[&PathBuf]) -> Result<()> {
    let missing: Vec<String> = files.iter().filter(|p| !p.is_file()).map(|p| p.display().to_string()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::TestBedMissing {
        what: what.to_string(),
        missing: missing.join(", "),
        command: command.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_name_the_install_command() {
        let empty = tempfile::tempdir().unwrap();
        let text = IstioAssets::in_dirs(empty.path(), "v0.0.0-x", "v0.8.0").unwrap_err().to_string();
        assert!(text.contains("run `scripts/istio-assets.sh`"), "{text}");
        assert!(text.contains("istio/v0.0.0-x/bin/pilot-discovery"), "{text}");
        assert!(text.contains("kwok/v0.8.0/stages.yaml"), "{text}");
    }
}
