//! Errors of the container executor's own API (connecting, cleaning up).
//!
//! A task that cannot be run is not an error of this kind: it becomes an
//! [`ExecOutcome::Errored`](crate::exec::ExecOutcome::Errored) naming the stage and the reason.

/// A boxed error from the engine client or the runtime.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Something went wrong talking to the container engine.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The engine address could not be turned into a client (e.g. an unsupported scheme in
    /// `DOCKER_HOST`).
    #[error("failed to set up a container engine client for {host}")]
    Client {
        /// The engine address, e.g. `unix:///var/run/docker.sock`.
        host: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// Nothing answered at the engine address.
    #[error("no container engine reachable at {host}: is dockerd running?")]
    Unreachable {
        /// The engine address.
        host: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The engine answered with an error.
    #[error("failed to {action}")]
    Engine {
        /// What was being done, e.g. "list containers labelled dev.sykli.managed=true".
        action: String,
        /// The engine's reason.
        #[source]
        source: BoxError,
    },
}

pub(crate) use crate::error_chain as chain;
