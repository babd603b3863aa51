// In tests/hardening/ (not tests/hardening.rs): one test binary for all.
//! Issue 15 (hardening), each weakness with the test that failed before its
//! fix: the stdlib comes only from where the user says, a silent API server
//! ends a run within the request deadline, waits tell the truth, and every
//! error has a documented kind with words, not dumps.

mod deadlines;
mod errors;
mod stdlib;
mod waits;

// The primitives' shared sandbox and helpers: these tests run beside them.
use crate::primitives::{kubectl, mesh_with, sandbox};
