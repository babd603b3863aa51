//! An object named the kubectl way (`svc/istio-ingressgateway`,
//! `istios.sailoperator.io/default`) and, once resolved, its URL.

use std::fmt;

use super::{ClusterClient, ResourceInfo};
use crate::error::{Error, Result};

/// A resolved reference to one object on one cluster.
#[derive(Clone, Debug)]
pub struct ObjectRef {
    pub info: ResourceInfo,
    pub name: String,
    pub namespace: Option<String>,
}

/// Splits `resource/name`; a bare resource (no name) is an error for calls on one object.
pub fn split(resource: &str) -> Result<(&str, &str)> {
    match resource.split_once('/') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() && !name.contains('/') => Ok((kind, name)),
        _ => Err(Error::usage(format!(
            "\"{resource}\" is not a resource in kubectl form TYPE/NAME (e.g. \"istio/external-istiod\", \"svc/istio-ingressgateway\", \"deploy/sleep\")"
        ))),
    }
}

impl ObjectRef {
    /// Resolves `TYPE/NAME` on `cluster`; namespaced kinds take `namespace`
    /// (default `default`, like kubectl without a context namespace).
    pub async fn resolve(cluster: &ClusterClient, resource: &str, namespace: Option<&str>) -> Result<Self> {
        let (kind, name) = split(resource)?;
        let info = cluster.resolve(kind).await?;
        Ok(Self::new(info, name, namespace))
    }

    pub fn new(info: ResourceInfo, name: &str, namespace: Option<&str>) -> Self {
        let namespace = info.namespaced.then(|| namespace.unwrap_or("default").to_string());
        ObjectRef {
            info,
            name: name.to_string(),
            namespace,
        }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.info.url(self.namespace.as_deref()), self.name)
    }

    pub fn collection_url(&self) -> String {
        self.info.url(self.namespace.as_deref())
    }
}

impl fmt::Display for ObjectRef {
    /// `Service istio-system/istio-ingressgateway`, `Istio external-istiod`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.info.kind, ns, self.name),
            None => write!(f, "{} {}", self.info.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_kubectl_form() {
        assert_eq!(split("istio/external-istiod").unwrap(), ("istio", "external-istiod"));
        assert_eq!(
            split("istios.sailoperator.io/default").unwrap(),
            ("istios.sailoperator.io", "default")
        );
        for bad in ["istio", "/x", "istio/", "a/b/c"] {
            let err = split(bad).unwrap_err().to_string();
            assert!(err.contains("TYPE/NAME"), "{bad}: {err}");
        }
    }
}
