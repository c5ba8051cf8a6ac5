//! What the executor hands the sandbox's init: the file system to build, the program to run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One mount of the sandbox's file system, applied in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Host path (file or directory).
    pub source: PathBuf,
    /// Absolute path inside the sandbox.
    pub target: PathBuf,
    /// Whether the task may write to it.
    pub writable: bool,
}

/// Everything the init process needs, written as JSON to a file it is pointed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitSpec {
    /// An empty host directory the sandbox's root (a tmpfs) is mounted on.
    pub root: PathBuf,
    /// A directory (the project) shown as an empty, read-only skeleton beneath the binds:
    /// the mount points of inputs and outputs in it exist, nothing else, and nothing can be
    /// created next to them.
    #[serde(default)]
    pub skeleton: Option<PathBuf>,
    /// Bind mounts, in order (later ones may sit inside earlier ones).
    pub mounts: Vec<MountSpec>,
    /// Working directory inside the sandbox.
    pub workdir: PathBuf,
    /// Absolute path of the program (the same inside as on the host).
    pub program: PathBuf,
    /// Arguments after the program.
    pub args: Vec<String>,
    /// Whether the task keeps the host's network (otherwise: a new network namespace with
    /// only loopback).
    pub network: bool,
    /// Whether to create a user namespace (when not running as root).
    pub user_ns: bool,
    /// `cgroup.procs` files the init joins before anything else (the cgroup limits).
    pub cgroup_procs: Vec<PathBuf>,
}

/// The argument that turns a binary into the sandbox's init: `BIN __sykli-sandbox-init SPEC`.
pub const INIT_ARG: &str = "__sykli-sandbox-init";

/// The descriptor number the init reports setup failures on (`stage\tmessage`).
pub const STATUS_FD: i32 = 3;

/// The exit code of an init that failed to set the sandbox up.
pub const SETUP_FAILED: i32 = 125;
