//! [`TaskCancels`]: cancelling one running task of a run (an observer's `sykli cancel ADDR
//! RUN TASK`) without cancelling the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// The cancellation tokens of a run's running tasks, by name: each a child of the run's
/// token, so cancelling the run still cancels every task. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct TaskCancels {
    tokens: Arc<Mutex<HashMap<String, CancellationToken>>>,
}

impl TaskCancels {
    /// A fresh token for `task`, a child of `run`, registered until [`TaskCancels::done`].
    pub fn token(&self, task: &str, run: &CancellationToken) -> CancellationToken {
        let t = run.child_token();
        self.lock().insert(task.to_owned(), t.clone());
        t
    }

    /// `task` ended: it can no longer be cancelled.
    pub fn done(&self, task: &str) {
        self.lock().remove(task);
    }

    /// Cancels `task` if it is running; returns whether it was.
    pub fn cancel(&self, task: &str) -> bool {
        match self.lock().get(task) {
            Some(t) => {
                let was = !t.is_cancelled();
                t.cancel();
                was
            }
            None => false,
        }
    }

    /// Whether `task` was cancelled on its own (its token cancelled while the run's is not).
    pub fn is_cancelled(&self, task: &str) -> bool {
        self.lock().get(task).is_some_and(|t| t.is_cancelled())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
}
