//! Talking to Kubernetes: one client per kubeconfig context, discovery,
//! resource names in kubectl form, server-side apply and watches.

pub mod api_error;
pub mod apply;
pub mod apply_check;
pub mod client;
pub mod clusters;
pub mod condition;
pub mod discovery;
pub mod metadata;
pub mod object_ref;
pub mod remote_secret;
pub mod rollout;
pub mod suggest;
pub mod trace;
pub mod watch;

pub use client::ClusterClient;
pub use clusters::Clusters;
pub use discovery::ResourceInfo;
pub use object_ref::ObjectRef;
