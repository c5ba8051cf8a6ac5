//! Container tasks on a Docker-compatible engine (Docker, or Podman's Docker-compatible
//! socket), through the engine API ([`bollard`]), never the `docker` command.
//!
//! [`DockerExecutor`] runs one attempt as: make sure the image is present (pull only when it
//! is not), create the task's cache volumes, start its sidecar services on a private network
//! and wait until they are ready, create and start the task container with the project
//! mounts, stream its output live into the [`OutputSink`](crate::exec::OutputSink), wait for
//! its exit code, then remove every container and the network again. Timeouts and
//! cancellation stop the task container (SIGTERM, `kill_grace`, SIGKILL) before the same
//! cleanup.
//!
//! Everything created carries the labels `dev.sykli.managed=true`, `dev.sykli.run=<run id>`
//! and `dev.sykli.task=<task>` (cache volumes only `dev.sykli.managed` and
//! `dev.sykli.cache`, as they outlive runs), so [`DockerExecutor::cleanup_leftovers`] can
//! remove what a killed runtime left behind.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sykli_runtime::exec::container::ContainerError> {
//! use sykli_runtime::exec::container::DockerExecutor;
//! // Does not fail when no engine runs: container tasks then end `errored`.
//! let docker = DockerExecutor::connect()?;
//! docker.cleanup_leftovers(None).await?;
//! # Ok(()) }
//! ```

mod attempt;
mod error;
mod names;
mod services;

use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures::future::BoxFuture;
use std::collections::HashMap;

use crate::exec::{ExecIo, ExecOutcome, ExecRequest, Executor};

pub use error::{BoxError, ContainerError};
pub use names::{
    LABEL_ATTEMPT, LABEL_CACHE, LABEL_MANAGED, LABEL_RUN, LABEL_SERVICE, LABEL_TASK,
    cache_volume_name,
};

/// The engine address used when `DOCKER_HOST` is not set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Which user the task container runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UserMapping {
    /// The uid:gid of the process running sykli, so files the task writes into host mounts
    /// belong to the invoking user (the default; right for rootful Docker).
    #[default]
    Invoking,
    /// The image's own user (right for rootless Podman/Docker, where root in the container
    /// already maps to the invoking user).
    Image,
    /// This `user[:group]`, as the engine accepts it.
    Fixed(String),
}

/// Settings of a [`DockerExecutor`].
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Engine address (`unix://`, `tcp://`, `http://`); `None` reads `DOCKER_HOST`, falling
    /// back to [`DEFAULT_DOCKER_HOST`].
    pub host: Option<String>,
    /// Which user task containers run as.
    pub user: UserMapping,
    /// Run a minimal init (`docker-init`/`catatonit`) as PID 1, so the task's shell gets
    /// signals and zombies are reaped (default true).
    pub init: bool,
    /// How long a sidecar service may take to become ready (default 60 s).
    pub service_ready_timeout: Duration,
    /// How long the first contact with the engine may take (default 10 s).
    pub connect_timeout: Duration,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            host: None,
            user: UserMapping::Invoking,
            init: true,
            service_ready_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// What [`DockerExecutor::cleanup_leftovers`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Containers removed.
    pub containers: usize,
    /// Networks removed.
    pub networks: usize,
}

/// Runs container tasks on a Docker-compatible engine.
///
/// Connecting is lazy: constructing the executor does no I/O, and the first container task
/// contacts the engine. Without an engine, container tasks end
/// [`ExecOutcome::Errored`] ("no container engine reachable at ...: is dockerd running?")
/// while the rest of the run goes on.
pub struct DockerExecutor {
    host: String,
    /// The client, when it could be set up without the engine (a unix socket that does not
    /// exist yet is only looked for again on first use).
    client: Option<Docker>,
    engine: tokio::sync::OnceCell<Docker>,
    config: DockerConfig,
}

impl std::fmt::Debug for DockerExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerExecutor")
            .field("host", &self.host)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DockerExecutor {
    /// An executor for the engine at `DOCKER_HOST` (default [`DEFAULT_DOCKER_HOST`]) with
    /// default settings. Fails only when the address itself is unusable.
    pub fn connect() -> Result<Self, ContainerError> {
        Self::with_config(DockerConfig::default())
    }

    /// An executor with these settings. Fails only when the address itself is unusable.
    pub fn with_config(config: DockerConfig) -> Result<Self, ContainerError> {
        let host = config
            .host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned());
        let client = match Docker::connect_with_host(&host) {
            Ok(client) => Some(client),
            Err(bollard::errors::Error::SocketNotFoundError(_)) => None,
            Err(e) => {
                return Err(ContainerError::Client {
                    host,
                    source: Box::new(e),
                });
            }
        };
        Ok(DockerExecutor {
            host,
            client,
            engine: tokio::sync::OnceCell::new(),
            config,
        })
    }

    /// The engine address this executor talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The settings of this executor.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// Contacts the engine (once; later calls reuse the answer) and agrees on an API version.
    pub async fn ping(&self) -> Result<(), ContainerError> {
        self.engine().await.map(|_| ())
    }

    async fn engine(&self) -> Result<&Docker, ContainerError> {
        self.engine
            .get_or_try_init(|| async {
                let unreachable = |source: BoxError| ContainerError::Unreachable {
                    host: self.host.clone(),
                    source,
                };
                let limit = self.config.connect_timeout;
                let client = match &self.client {
                    Some(client) => client.clone(),
                    None => Docker::connect_with_host(&self.host)
                        .map_err(|e| unreachable(Box::new(e)))?,
                };
                match tokio::time::timeout(limit, client.ping()).await {
                    Err(_) => {
                        return Err(unreachable(
                            format!("no answer within {}", humantime::format_duration(limit))
                                .into(),
                        ));
                    }
                    Ok(Err(e)) => return Err(unreachable(Box::new(e))),
                    Ok(Ok(_)) => {}
                }
                match tokio::time::timeout(limit, client.negotiate_version()).await {
                    Err(_) => Err(unreachable("no answer to /version".into())),
                    Ok(Err(e)) => Err(ContainerError::Engine {
                        action: format!("agree on an API version with {}", self.host),
                        source: Box::new(e),
                    }),
                    Ok(Ok(docker)) => Ok(docker),
                }
            })
            .await
    }

    /// Removes containers and networks labelled `dev.sykli.managed=true` (only those of run
    /// `run_id` when given), whether running or not. Cache volumes are kept. Backs
    /// `sykli clean --containers`.
    pub async fn cleanup_leftovers(
        &self,
        run_id: Option<&str>,
    ) -> Result<CleanupReport, ContainerError> {
        let docker = self.engine().await?;
        let mut labels = vec![format!("{LABEL_MANAGED}=true")];
        if let Some(run) = run_id {
            labels.push(format!("{LABEL_RUN}={run}"));
        }
        let what = labels.join(",");
        let filters = HashMap::from([("label".to_owned(), labels)]);
        let engine_err = |action: String| {
            move |e: bollard::errors::Error| ContainerError::Engine {
                action,
                source: Box::new(e),
            }
        };

        let containers = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(engine_err(format!("list containers labelled {what}")))?;
        let mut report = CleanupReport::default();
        for c in containers {
            let Some(id) = c.id else { continue };
            match docker
                .remove_container(
                    &id,
                    Some(
                        RemoveContainerOptionsBuilder::default()
                            .force(true)
                            .v(true)
                            .build(),
                    ),
                )
                .await
            {
                Ok(()) => report.containers += 1,
                Err(e) if attempt::is_not_found(&e) => {}
                Err(e) => return Err(engine_err(format!("remove container {id}"))(e)),
            }
        }

        let networks = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(engine_err(format!("list networks labelled {what}")))?;
        for n in networks {
            let Some(id) = n.id else { continue };
            match docker.remove_network(&id).await {
                Ok(()) => report.networks += 1,
                Err(e) if attempt::is_not_found(&e) => {}
                Err(e) => return Err(engine_err(format!("remove network {id}"))(e)),
            }
        }
        Ok(report)
    }
}

impl Executor for DockerExecutor {
    fn name(&self) -> &str {
        "docker"
    }

    fn execute<'a>(&'a self, req: &'a ExecRequest, io: ExecIo) -> BoxFuture<'a, ExecOutcome> {
        Box::pin(async move {
            let Some(spec) = &req.container else {
                return ExecOutcome::errored(
                    "choosing an executor",
                    format!(
                        "task `{}` has no container; the docker executor runs only container tasks",
                        req.task
                    ),
                );
            };
            if req.background.is_some() {
                return ExecOutcome::errored(
                    "choosing an executor",
                    format!(
                        "task `{}` is a background task; the docker executor does not run host services",
                        req.task
                    ),
                );
            }
            if io.cancel.is_cancelled() {
                return ExecOutcome::Cancelled;
            }
            let docker = tokio::select! {
                d = self.engine() => match d {
                    Ok(d) => d,
                    Err(e) => {
                        return ExecOutcome::errored(
                            "connecting to the container engine",
                            error::chain(&e),
                        );
                    }
                },
                _ = io.cancel.cancelled() => return ExecOutcome::Cancelled,
            };
            attempt::run(docker, &self.config, req, spec, io).await
        })
    }
}
