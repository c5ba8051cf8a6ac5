//! Where workers come from: a [`WorkerProvider`] starts and stops them; the autoscaler only
//! says how many.

/// Why a provider could not start or stop workers.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// A worker process could not be started.
    #[error("failed to start worker process {program} {args}")]
    Spawn {
        /// The program.
        program: String,
        /// Its arguments, joined by spaces.
        args: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A worker's log file could not be opened.
    #[error("failed to open worker log {path}")]
    Log {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A worker could not be signalled or waited for.
    #[error("worker process {pid}: failed to {action}")]
    Process {
        /// Its process id.
        pid: u32,
        /// `signal` or `wait for`.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Starts and stops workers of a pool.
pub trait WorkerProvider: Send {
    /// Workers started and not asked to stop (joining or joined); reaps those that ended.
    fn current(&mut self) -> Result<usize, ProviderError>;
    /// Starts `n` more workers.
    fn start(&mut self, n: usize) -> Result<(), ProviderError>;
    /// Stops `n` workers gracefully: they finish what they run and take nothing new.
    fn stop(&mut self, n: usize) -> Result<(), ProviderError>;
}
