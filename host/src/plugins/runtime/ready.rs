//! Ready instances: a store with its component already instantiated, made before the call that
//! will use it, so instantiation is not on the call path.
//!
//! Owns the spare slot of each loaded component (so one per plugin per registry: a spare never
//! crosses agents), which holds at most one ready instance, made for one privilege set (plugin,
//! worktree, grants, memory cap, session directory) and handed only to a call with the same one,
//! exactly once; and the background thread that makes the next spare after each use and drops
//! used stores, so their teardown is off the call path too.
//!
//! Must not reuse a store or an instance: every call still gets its own, only made earlier. The
//! per-call limits (deadline, cancellation, the `.git`/`.cove` guard) are armed by the runtime
//! when the call starts, not here. Must not decide grants or limits: it is handed [`CallEnv`]s.

use super::{CallEnv, Stdio, StoreState, new_store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use wasmtime::{Engine, Store};

/// A pre-linked component that can be instantiated into a store (one per contract world).
pub(super) trait Pre: Clone + Send + Sync + 'static {
    type Instance: Send + 'static;
    fn instantiate_into(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Self::Instance>;
}

/// A store with the component instantiated in it, not yet called.
pub(super) struct Ready<T> {
    pub store: Store<StoreState>,
    pub instance: T,
    pub stdio: Stdio,
    /// The call environment it was made for; only a call with the same privileges may use it.
    made_for: CallEnv,
}

impl<T> Ready<T> {
    pub fn new(store: Store<StoreState>, instance: T, stdio: Stdio, env: &CallEnv) -> Self {
        Self {
            store,
            instance,
            stdio,
            made_for: env.clone(),
        }
    }
}

/// Whether a store made for `a` grants exactly what `b` grants. Deadline and cancellation are
/// per call and armed at the start of each, so they do not count.
fn same_privileges(a: &CallEnv, b: &CallEnv) -> bool {
    let same_worktree = match (&a.worktree, &b.worktree) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y) || x.root() == y.root(),
        (None, None) => true,
        _ => false,
    };
    a.plugin == b.plugin
        && same_worktree
        && (Arc::ptr_eq(&a.grants, &b.grants) || a.grants == b.grants)
        && a.limits.memory_bytes == b.limits.memory_bytes
        && Arc::ptr_eq(&a.session_cwd, &b.session_cwd)
}

/// The spare slot of one loaded component.
pub(super) struct Spare<T> {
    slot: Mutex<Option<Ready<T>>>,
    /// A spare is being made in the background: do not queue another.
    filling: AtomicBool,
}

impl<T> Default for Spare<T> {
    fn default() -> Self {
        Self {
            slot: Mutex::new(None),
            filling: AtomicBool::new(false),
        }
    }
}

impl<T> Spare<T> {
    /// The spare, if there is one made for `env`'s privileges. It leaves the slot: it is used once.
    /// One made for other privileges is dropped, never handed out.
    pub fn take(&self, env: &CallEnv) -> Option<Ready<T>> {
        let ready = self.slot.lock().ok()?.take()?;
        if same_privileges(&ready.made_for, env) {
            Some(ready)
        } else {
            tracing::debug!(
                plugin = &*env.plugin,
                "dropping a spare made for other privileges"
            );
            None
        }
    }

    /// Whether a spare is waiting in the slot.
    pub fn is_ready(&self) -> bool {
        self.slot.lock().is_ok_and(|s| s.is_some())
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The background thread that makes spares and drops used stores.
pub(super) struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
}

impl Worker {
    /// Start the thread. Without it (it could not be spawned) every call instantiates on its own.
    pub fn start() -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("cove-prepare".into())
            .spawn(move || {
                // Ends when the runtime, the only sender, is dropped.
                while let Ok(job) = rx.recv() {
                    job();
                }
            });
        match spawned {
            Ok(_) => Self { jobs: Some(tx) },
            Err(e) => {
                tracing::warn!(
                    "cannot start the thread that prepares instances ahead of calls: {e}"
                );
                Self { jobs: None }
            }
        }
    }

    fn run(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }

    /// Make a spare for `env` in the background, unless one is waiting or being made.
    pub fn refill<P: Pre>(
        &self,
        engine: &Engine,
        pre: &P,
        spare: &Arc<Spare<P::Instance>>,
        env: &CallEnv,
    ) {
        if spare.is_ready() || spare.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let (engine, pre, slot, mut env) =
            (engine.clone(), pre.clone(), spare.clone(), env.clone());
        // A spare is never cancelled by the call that asked for it.
        env.cancel = None;
        let job = Box::new(move || {
            let made = new_store(&engine, &env)
                .ok()
                .and_then(|(mut store, stdio)| {
                    match pre.instantiate_into(&mut store) {
                        Ok(instance) => Some(Ready::new(store, instance, stdio, &env)),
                        // The call that finds no spare instantiates itself and reports the failure.
                        Err(_) => None,
                    }
                });
            if let (Some(ready), Ok(mut slot)) = (made, slot.slot.lock())
                && slot.is_none()
            {
                *slot = Some(ready);
            }
            slot.filling.store(false, Ordering::Release);
        });
        if !self.run(job) {
            spare.filling.store(false, Ordering::Release);
        }
    }

    /// Drop a used store in the background: returning its instance to the pool is not the
    /// caller's wait.
    pub fn retire(&self, store: Store<StoreState>) {
        let job: Job = Box::new(move || drop(store));
        // When the thread is gone, the job (and the store in it) is dropped here instead.
        let _ = self.run(job);
    }
}
