
mod support;
mod sandbox;
