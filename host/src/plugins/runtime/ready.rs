//! Ready instances: a store with its component already instantiated, made before the call that
//! will use it, so instantiation is not on the call path.
//!
//! Owns the spare slot of each loaded component (so one per plugin per registry: a spare never
//! crosses agents), which holds at most one ready instance, made for one privilege set (plugin,
//! worktree, grants, memory cap, session directory) and handed only to a call with the same one,
//! exactly once; and the background thread that, after each call, drops its store and makes the
//! next spare, so neither the teardown nor the set-up is on the call path.
//!
//! Must not reuse a store or an instance: every call still gets its own, only made earlier. The
//! per-call limits (deadline, cancellation, the `.git`/`.cove` guard) are armed by the runtime
//! when the call starts, not here. Must not decide grants or limits: it is handed [`CallEnv`]s.

use super::{CallEnv, Stdio, StoreState, new_store};
use std::sync::atomic::{AtomicUsize, Ordering};
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
        && a.commands == b.commands
}

/// The spare slot of one loaded component.
pub(super) struct Spare<T> {
    slot: Mutex<Slot<T>>,
}

/// What the slot holds, under one lock, so "nothing waiting and nothing being made" is never
/// misread while the background thread is between putting a spare in and saying it is done.
struct Slot<T> {
    ready: Option<Ready<T>>,
    /// A spare is being made in the background: do not queue another.
    filling: bool,
}

impl<T> Default for Spare<T> {
    fn default() -> Self {
        Self {
            slot: Mutex::new(Slot {
                ready: None,
                filling: false,
            }),
        }
    }
}

impl<T> Spare<T> {
    /// The spare, if there is one made for `env`'s privileges. It leaves the slot: it is used once.
    /// One made for other privileges is dropped, never handed out.
    pub fn take(&self, env: &CallEnv) -> Option<Ready<T>> {
        let ready = self.slot.lock().ok()?.ready.take()?;
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
        self.slot.lock().is_ok_and(|s| s.ready.is_some())
    }

    /// Claim the making of the next spare: true when none is waiting or being made.
    fn claim(&self) -> bool {
        self.slot.lock().is_ok_and(|mut s| {
            let claim = s.ready.is_none() && !s.filling;
            s.filling |= claim;
            claim
        })
    }

    /// End a claim, putting `ready` in the slot if it is still empty.
    fn release(&self, ready: Option<Ready<T>>) {
        if let Ok(mut s) = self.slot.lock() {
            if s.ready.is_none() {
                s.ready = ready;
            }
            s.filling = false;
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Most jobs waiting for the background thread. Each may hold a used store, and with it a slot of
/// the engine's pool: when calls come faster than the thread keeps up, their stores are dropped
/// where they are instead, so the pool never fills with stores waiting to be dropped.
const MAX_QUEUED: usize = 4;

/// The background thread that drops used stores and makes spares, and its queue.
pub(super) struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    queued: Arc<AtomicUsize>,
}

impl Worker {
    /// Start the thread. Without it (it could not be spawned) every call instantiates on its own.
    pub fn start() -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        let count = queued.clone();
        let spawned = std::thread::Builder::new()
            .name("cove-prepare".into())
            .spawn(move || {
                // Ends when the runtime, the only sender, is dropped.
                while let Ok(job) = rx.recv() {
                    job();
                    count.fetch_sub(1, Ordering::AcqRel);
                }
            });
        match spawned {
            Ok(_) => Self {
                jobs: Some(tx),
                queued,
            },
            Err(e) => {
                tracing::warn!(
                    "cannot start the thread that prepares instances ahead of calls: {e}"
                );
                Self { jobs: None, queued }
            }
        }
    }

    /// Queue `job`, or give it back when the thread is gone or behind.
    fn run(&self, job: Job) -> Result<(), Job> {
        let Some(tx) = &self.jobs else {
            return Err(job);
        };
        if self.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(job);
        }
        tx.send(job).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            e.0
        })
    }

    /// After a call: drop its store and then, unless a spare is waiting or being made, make the
    /// next one for `env`, both in one job on the background thread. The caller only queues it.
    pub fn after_call<P: Pre>(
        &self,
        store: Store<StoreState>,
        engine: &Engine,
        pre: &P,
        spare: &Arc<Spare<P::Instance>>,
        env: &CallEnv,
    ) {
        let refill = spare.claim();
        let next = refill.then(|| {
            let mut env = env.clone();
            // A spare is never cancelled by the call that asked for it.
            env.cancel = None;
            (engine.clone(), pre.clone(), spare.clone(), env)
        });
        let job: Job = Box::new(move || {
            drop(store);
            if let Some((engine, pre, spare, env)) = next {
                fill(&engine, &pre, &spare, &env);
            }
        });
        if self.run(job).is_err() && refill {
            // Behind or gone: the store is dropped here (with the job), and no spare is made
            // this time; the next call makes its own instance and asks again.
            spare.release(None);
        }
    }

    /// Drop a store that served no call (a spare that no longer fits, or a failed
    /// instantiation), in the background when the thread keeps up.
    pub fn retire(&self, store: Store<StoreState>) {
        // When it cannot be queued, the job (and the store in it) is dropped here instead.
        let _ = self.run(Box::new(move || drop(store)));
    }
}

/// Make a spare for `env` and put it in the slot (on the background thread).
fn fill<P: Pre>(engine: &Engine, pre: &P, spare: &Spare<P::Instance>, env: &CallEnv) {
    let made = new_store(engine, env).ok().and_then(|(mut store, stdio)| {
        match pre.instantiate_into(&mut store) {
            Ok(instance) => Some(Ready::new(store, instance, stdio, env)),
            // The call that finds no spare instantiates itself and reports the failure.
            Err(_) => None,
        }
    });
    spare.release(made);
}
