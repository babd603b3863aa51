//! mesh-run: multi-cluster Istio procedures as Rhai playbooks, run against
//! real Kubernetes API servers. The binary (main.rs) is glue; this is the tool.

pub mod applyset;
pub mod bridge;
pub mod check;
pub mod cli;
pub mod diagnostic;
pub mod doc;
pub mod engine;
pub mod error;
pub mod inputs;
pub mod jsonpath;
pub mod kube;
pub mod manifest;
pub mod memory;
pub mod modules;
pub mod options;
pub mod primitives;
pub mod report;
pub mod rhai_json;
pub mod run;
pub mod sandbox;
pub mod selector;
pub mod sensitive;
pub mod session;
pub mod status;
pub mod stdlib;
pub mod watch;

#[cfg(test)]
mod fuzz;
