mod cli;
mod hardening;
mod playbooks;
mod primitives;
mod remote_secret;
mod sandbox;
mod support;
mod watch;
