//! A container's volume mounts as files under its folder: what a kubelet
//! would mount at `/etc/cacerts` lands in `FOLDER/etc/cacerts`. Secrets and
//! ConfigMaps (optional ones that are missing: an empty folder), projected
//! volumes (service-account tokens, the cluster CA, the namespace),
//! downward API files and emptyDirs.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod, Volume};

use super::pod_env::field_value;
use super::pod_objects::{PodObjects, TokenSpec, mounted_volumes};

/// One mounted volume: files under `dir` (relative to the container's root).
#[derive(Debug, PartialEq, Eq)]
pub struct MountedVolume {
    pub dir: PathBuf,
    pub files: Vec<VolumeFile>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct VolumeFile {
    /// Relative to the volume's `dir`.
    pub path: PathBuf,
    pub content: Vec<u8>,
    /// Secrets and tokens: owner-only.
    pub private: bool,
}

/// The mounts of `container` as files, and one note per mount left out
/// (volume types a folder cannot stand in for, `subPath`s). Errors are what
/// keeps a kubelet from starting the container (a required object missing).
pub fn container_volumes(pod: &Pod, container: &Container, objects: &PodObjects) -> Result<(Vec<MountedVolume>, Vec<String>), String> {
    let volumes: BTreeMap<&str, &Volume> = mounted_volumes(pod, container).map(|v| (v.name.as_str(), v)).collect();
    let (mut mounted, mut notes) = (Vec::new(), Vec::new());
    for mount in container.volume_mounts.iter().flatten() {
        let Some(volume) = volumes.get(mount.name.as_str()) else {
            return Err(format!("volume {:?} is mounted but not declared", mount.name));
        };
        if mount.sub_path.as_deref().is_some_and(|p| !p.is_empty()) {
            notes.push(format!(
                "volume {} at {}: subPath mounts are left out",
                mount.name, mount.mount_path
            ));
            continue;
        }
        let dir = relative(&mount.mount_path)?;
        match files(pod, volume, objects)? {
            Some(files) => mounted.push(MountedVolume { dir, files }),
            None => notes.push(format!("volume {} at {}: its type is left out", mount.name, mount.mount_path)),
        }
    }
    Ok((mounted, notes))
}

/// `None`: a volume type without files of ours (hostPath, PVCs, ...).
fn files(pod: &Pod, volume: &Volume, objects: &PodObjects) -> Result<Option<Vec<VolumeFile>>, String> {
    if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        let data = objects.secrets.get(&name).and_then(Option::as_ref);
        return keyed(data, secret.items.as_deref(), secret.optional, true, &format!("Secret {name}")).map(Some);
    }
    if let Some(config_map) = &volume.config_map {
        let name = &config_map.name;
        let data = objects.config_maps.get(name).and_then(Option::as_ref);
        return keyed(
            data,
            config_map.items.as_deref(),
            config_map.optional,
            false,
            &format!("ConfigMap {name}"),
        )
        .map(Some);
    }
    if volume.empty_dir.is_some() {
        return Ok(Some(Vec::new()));
    }
    if let Some(downward) = &volume.downward_api {
        return downward_files(pod, downward.items.as_deref().unwrap_or_default()).map(Some);
    }
    let Some(projected) = &volume.projected else {
        return Ok(None);
    };
    let mut all = Vec::new();
    for source in projected.sources.iter().flatten() {
        if let Some(secret) = &source.secret {
            let data = objects.secrets.get(&secret.name).and_then(Option::as_ref);
            all.extend(keyed(
                data,
                secret.items.as_deref(),
                secret.optional,
                true,
                &format!("Secret {}", secret.name),
            )?);
        }
        if let Some(config_map) = &source.config_map {
            let data = objects.config_maps.get(&config_map.name).and_then(Option::as_ref);
            let what = format!("ConfigMap {}", config_map.name);
            all.extend(keyed(data, config_map.items.as_deref(), config_map.optional, false, &what)?);
        }
        if let Some(downward) = &source.downward_api {
            all.extend(downward_files(pod, downward.items.as_deref().unwrap_or_default())?);
        }
        if let Some(token) = &source.service_account_token {
            let spec = TokenSpec {
                audience: token.audience.clone().filter(|a| !a.is_empty()),
                expiration_seconds: token.expiration_seconds.unwrap_or(3600),
            };
            let content = objects.tokens.get(&spec).ok_or("no service-account token was requested")?;
            all.push(VolumeFile {
                path: relative(&token.path)?,
                content: content.clone().into_bytes(),
                private: true,
            });
        }
    }
    Ok(Some(all))
}

/// The keys of a Secret or ConfigMap as files (only `items` when given).
fn keyed(
    data: Option<&BTreeMap<String, Vec<u8>>>,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    private: bool,
    what: &str,
) -> Result<Vec<VolumeFile>, String> {
    let Some(data) = data else {
        return if optional == Some(true) {
            Ok(Vec::new())
        } else {
            Err(format!("{what} not found"))
        };
    };
    let file = |path: &str, content: &Vec<u8>| {
        Ok(VolumeFile {
            path: relative(path)?,
            content: content.clone(),
            private,
        })
    };
    match items {
        None => data.iter().map(|(key, content)| file(key, content)).collect(),
        Some(items) => items
            .iter()
            .filter_map(|item| match data.get(&item.key) {
                Some(content) => Some(file(&item.path, content)),
                None if optional == Some(true) => None,
                None => Some(Err(format!("{what} has no key {:?}", item.key))),
            })
            .collect(),
    }
}

fn downward_files(pod: &Pod, items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile]) -> Result<Vec<VolumeFile>, String> {
    items
        .iter()
        .map(|item| {
            let field = item
                .field_ref
                .as_ref()
                .ok_or(format!("downward API file {}: only fieldRef is supported", item.path))?;
            let value = field_value(pod, &field.field_path).ok_or(format!("downward API file {}: unsupported fieldRef", item.path))?;
            Ok(VolumeFile {
                path: relative(&item.path)?,
                content: value.into_bytes(),
                private: false,
            })
        })
        .collect()
}

/// A mount path or key path as a path below the folder: no `..`, no root.
pub fn relative(path: &str) -> Result<PathBuf, String> {
    let relative: PathBuf = Path::new(path)
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .map(|c| match c {
            Component::Normal(part) => Ok(part),
            _ => Err(format!("path {path:?} leaves its folder")),
        })
        .collect::<Result<_, _>>()?;
    if relative.as_os_str().is_empty() {
        return Err(format!("path {path:?} names no file below its folder"));
    }
    Ok(relative)
}

/// Writes `volumes` below `root`, each volume's folder emptied first (a key
/// removed from a Secret disappears, as with a kubelet's atomic update).
pub fn write(root: &Path, volumes: &[MountedVolume]) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    for volume in volumes {
        let dir = root.join(&volume.dir);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&dir, e)),
            _ => {}
        }
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        for file in &volume.files {
            let path = dir.join(&file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            let mode = if file.private { 0o600 } else { 0o644 };
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            out.write_all(&file.content).map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The volumes of the istiod chart's Deployment as a Pod carries them
    /// (the service-account admission adds `kube-api-access-*`).
    fn istiod_pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "istiod-1", "namespace": "external-istiod"},
            "spec": {
                "containers": [{"name": "discovery", "volumeMounts": [
                    {"name": "local-certs", "mountPath": "/var/run/secrets/istio-dns"},
                    {"name": "cacerts", "mountPath": "/etc/cacerts", "readOnly": true},
                    {"name": "istio-kubeconfig", "mountPath": "/var/run/secrets/remote", "readOnly": true},
                    {"name": "istio-csr-ca-configmap", "mountPath": "/var/run/secrets/istiod/ca", "readOnly": true},
                    {"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
                "volumes": [
                    {"name": "local-certs", "emptyDir": {"medium": "Memory"}},
                    {"name": "cacerts", "secret": {"secretName": "cacerts", "optional": true}},
                    {"name": "istio-kubeconfig", "secret": {"secretName": "istio-kubeconfig", "optional": true}},
                    {"name": "istio-csr-ca-configmap", "configMap": {"name": "istio-ca-root-cert", "optional": true}},
                    {"name": "kube-api-access-x", "projected": {"sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}]
            }
        }))
        .unwrap()
    }

    fn objects() -> PodObjects {
        let mut objects = PodObjects::default();
        objects.secrets.insert("cacerts".into(), None);
        objects.secrets.insert(
            "istio-kubeconfig".into(),
            Some([("config".to_string(), b"kubeconfig".to_vec())].into()),
        );
        objects.config_maps.insert("istio-ca-root-cert".into(), None);
        let root_ca = [("ca.crt".to_string(), b"CA".to_vec())].into();
        objects.config_maps.insert("kube-root-ca.crt".into(), Some(root_ca));
        let spec = TokenSpec {
            audience: None,
            expiration_seconds: 3607,
        };
        objects.tokens.insert(spec, "TOKEN".into());
        objects
    }

    fn file(path: &str, content: &str, private: bool) -> VolumeFile {
        VolumeFile {
            path: path.into(),
            content: content.as_bytes().to_vec(),
            private,
        }
    }

    #[test]
    fn the_istiod_chart_s_mounts_become_files_under_the_folder() {
        let pod = istiod_pod();
        let (volumes, notes) = container_volumes(&pod, &pod.spec.as_ref().unwrap().containers[0], &objects()).unwrap();
        assert_eq!(notes, Vec::<String>::new());
        let dirs: Vec<&Path> = volumes.iter().map(|v| v.dir.as_path()).collect();
        assert_eq!(
            dirs,
            [
                "var/run/secrets/istio-dns",
                "etc/cacerts",
                "var/run/secrets/remote",
                "var/run/secrets/istiod/ca",
                "var/run/secrets/kubernetes.io/serviceaccount"
            ]
            .map(Path::new)
        );
        assert_eq!(volumes[1].files, [], "a missing optional Secret: an empty folder");
        assert_eq!(volumes[2].files, [file("config", "kubeconfig", true)]);
        assert_eq!(
            volumes[4].files,
            [
                file("token", "TOKEN", true),
                file("ca.crt", "CA", false),
                file("namespace", "external-istiod", false)
            ]
        );

        let root = tempfile::tempdir().unwrap();
        write(root.path(), &volumes).unwrap();
        let read = |p: &str| std::fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(read("var/run/secrets/remote/config"), "kubeconfig");
        assert_eq!(read("var/run/secrets/kubernetes.io/serviceaccount/namespace"), "external-istiod");
        assert!(root.path().join("etc/cacerts").is_dir());
    }

    #[test]
    fn a_required_secret_that_is_missing_keeps_the_container_from_starting() {
        let pod = istiod_pod();
        let mut objects = objects();
        objects.config_maps.insert("kube-root-ca.crt".into(), None);
        let error = container_volumes(&pod, &pod.spec.as_ref().unwrap().containers[0], &objects).unwrap_err();
        assert_eq!(error, "ConfigMap kube-root-ca.crt not found");
    }

    #[test]
    fn paths_stay_below_the_folder() {
        assert_eq!(relative("/etc/cacerts").unwrap(), Path::new("etc/cacerts"));
        assert!(relative("../x").is_err());
        assert!(relative("/a/../../x").is_err());
        assert!(relative("/").is_err());
    }
}
