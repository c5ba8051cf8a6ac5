//! The sandbox executor (Linux): shell tasks as hermetic host processes, no container.
//!
//! Each task runs in its own mount, PID, IPC, UTS and (unless the task asks for the network)
//! network namespace, plus a user namespace when the runtime is not root. It sees the
//! executor's read-only host paths, its declared inputs read-only, its outputs writable, a
//! private `/tmp`, a fresh `/proc` and a minimal `/dev`; nothing else of the host. A fresh
//! PID 1 runs the task, so nothing it started survives it. `memory_mb`, `cpus` and `pids`
//! become cgroup limits (v2 where it can delegate them, else v1; a limit that cannot be
//! enforced is said so on the task's stderr).
//!
//! ```text
//! SandboxExecutor ── layout (mounts) + cgroups ──► BIN __sykli-sandbox-init spec.json
//!                                                   └─ init: namespaces, PID 1, pivot_root, exec
//! ```
//!
//! The setup runs in a re-executed init ([`init`]): every binary that may run sandboxed
//! tasks calls [`run_init_if_requested`] first thing in `main` (`sykli` and pipeline
//! binaries do). A failed task's stderr is scanned for the undeclared path it tripped over
//! ([`violation`]). See `docs/sandbox.md`.

#[cfg(target_os = "linux")]
pub mod cgroup;
#[cfg(target_os = "linux")]
mod executor;
#[cfg(target_os = "linux")]
pub mod init;
pub mod layout;
mod request;
pub mod spec;
pub mod violation;

#[cfg(target_os = "linux")]
pub use executor::{SandboxConfig, SandboxExecutor};
#[cfg(target_os = "linux")]
pub use init::run_if_requested as run_init_if_requested;
pub use layout::{DEFAULT_HOST_PATHS, Layout};
pub use request::{Limits, SandboxRequest, limits_of};

/// The label the sandbox executor carries; placement sends sandboxed tasks to an executor
/// carrying it.
pub const SANDBOX_LABEL: &str = "sandbox";

/// Does nothing off Linux (there is no sandbox executor to re-execute).
#[cfg(not(target_os = "linux"))]
pub fn run_init_if_requested() {}
