//! The one bridge between Rhai (synchronous, on a blocking thread) and the
//! async Kubernetes code: every primitive's async core runs through `run`,
//! raced against the run's cancellation (Ctrl-C, --timeout, a watch rerun).

use std::future::Future;
use std::sync::{Arc, Mutex};

use rhai::{Dynamic, EvalAltResult, Position};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// Why a run was cancelled; decides the error the interrupted call returns.
#[derive(Clone, Debug, PartialEq)]
pub enum StopReason {
    Interrupted,
    /// SIGTERM: reported as the signal it is, not as Ctrl-C.
    Terminated,
    RunTimeout(String),
    Rerun,
    /// The heap passed the memory cap (`crate::memory`).
    MemoryLimit,
    /// Another run took over the Lease of this run's ApplySet (`crate::applyset::lock`).
    LeaseLost(Box<crate::error::Locked>),
}

#[derive(Clone)]
pub struct Bridge {
    handle: Handle,
    pub cancel: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

impl Bridge {
    pub fn new(handle: Handle) -> Self {
        Bridge {
            handle,
            cancel: CancellationToken::new(),
            reason: Arc::new(Mutex::new(None)),
        }
    }

    /// Cancels the run; the first reason given wins.
    pub fn stop(&self, reason: StopReason) {
        self.reason.lock().expect("reason lock").get_or_insert(reason);
        self.cancel.cancel();
    }

    pub fn stop_error(&self) -> Error {
        match self.reason.lock().expect("reason lock").clone() {
            Some(StopReason::RunTimeout(after)) => Error::Timeout {
                cluster: "-".into(),
                object: "the playbook".into(),
                after,
                waiting_for: "the whole run (--timeout)".into(),
                explanation: "  raise --timeout, or look at the step that was running".into(),
            },
            Some(StopReason::Terminated) => Error::Terminated { signal: "SIGTERM".into() },
            Some(StopReason::MemoryLimit) => Error::MemoryLimit {
                limit: crate::memory::human(crate::memory::limit()),
            },
            Some(StopReason::LeaseLost(locked)) => Error::Locked(locked),
            Some(StopReason::Rerun) => Error::Interrupted {
                place: "by a file change (rerun)".into(),
            },
            _ => Error::Interrupted { place: "by Ctrl-C".into() },
        }
    }

    /// Runs an async core to completion from script code, converting its
    /// error into a Rhai error the playbook can catch by kind.
    pub fn run<T>(&self, fut: impl Future<Output = crate::error::Result<T>>) -> Result<T, Box<EvalAltResult>> {
        if self.cancel.is_cancelled() {
            return Err(to_rhai(self.stop_error()));
        }
        let cancel = self.cancel.clone();
        let result = self.handle.block_on(async move {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                r = fut => Some(r),
            }
        });
        match result {
            Some(r) => r.map_err(to_rhai),
            None => Err(to_rhai(self.stop_error())),
        }
    }

    /// Runs clean-up that must happen however the run ended (cancelled too),
    /// for at most `limit`: `None` when it did not finish in time.
    pub fn finally<T>(&self, limit: std::time::Duration, fut: impl Future<Output = T>) -> Option<T> {
        // The timer is made inside: it needs the runtime's context.
        self.handle.block_on(async move { tokio::time::timeout(limit, fut).await }).ok()
    }

    /// Starts a background task on the run's runtime.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) -> tokio::task::JoinHandle<()> {
        self.handle.spawn(fut)
    }
}

/// A mesh-run error as a Rhai value: `catch (e)` sees `e.kind`, `e.message`.
#[derive(Clone, Debug)]
pub struct ScriptError(pub Arc<Error>);

impl ScriptError {
    pub fn kind(&mut self) -> String {
        self.0.kind().to_string()
    }
    pub fn message(&mut self) -> String {
        self.0.to_string()
    }
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Position NONE: the engine fills in the call site of the primitive.
pub fn to_rhai(err: Error) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from(ScriptError(Arc::new(err))), Position::NONE).into()
}

pub fn register(engine: &mut rhai::Engine) {
    engine
        .register_type_with_name::<ScriptError>("Error")
        .register_get("kind", ScriptError::kind)
        .register_get("message", ScriptError::message)
        // Explains a caught error further without changing its kind.
        // `throw e.with_note("...")`.
        .register_fn("with_note", |e: &mut ScriptError, note: &str| {
            ScriptError(Arc::new(Error::Noted {
                source: e.0.clone(),
                note: note.to_string(),
            }))
        })
        .register_fn("to_string", |e: &mut ScriptError| e.to_string())
        .register_fn("to_debug", |e: &mut ScriptError| e.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clean_up_runs_after_a_stop_within_its_limit() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        let bridge = Bridge::new(runtime.handle().clone());
        bridge.stop(StopReason::Interrupted);
        assert!(bridge.run(async { Ok(()) }).is_err(), "a stopped run runs no more steps");
        assert_eq!(bridge.finally(Duration::from_secs(5), async { 7 }), Some(7));
        assert_eq!(bridge.finally(Duration::from_millis(20), std::future::pending::<()>()), None);
    }

    #[test]
    fn a_lost_lease_stops_the_run_as_locked() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let bridge = Bridge::new(runtime.handle().clone());
        let locked = crate::error::Locked {
            set: "external".into(),
            cluster: "cp".into(),
            holder: "ci/1/abcdef".into(),
            playbook: String::new(),
            context: String::new(),
            acquired: None,
            renewed: None,
            duration_secs: 30,
            lost: true,
        };
        bridge.stop(StopReason::LeaseLost(Box::new(locked)));
        let err = bridge.stop_error();
        assert_eq!(err.kind(), "locked");
        assert!(
            err.to_string()
                .contains("took over ApplySet `external` on cluster `cp` from this run"),
            "{err}"
        );
    }
}
