
mod support;
mod sandbox;
mod remote_secret;
mod watch;
mod primitives;
mod playbooks;
mod cli;
