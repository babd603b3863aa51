mod cli;
mod playbooks;
mod primitives;
mod remote_secret;
mod sandbox;
mod status;
mod support;
mod watch;
