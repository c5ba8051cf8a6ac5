//! One attempt of one container task, from image to cleanup.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, ImageInspect, Mount, MountType};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptions,
};
use futures::StreamExt;
use tokio::task::JoinHandle;

use super::error::chain;
use super::names::{self, LABEL_ATTEMPT, LABEL_CACHE, LABEL_MANAGED};
use super::{DockerConfig, UserMapping, services};
use crate::exec::{
    Action, ContainerSpec, ExecIo, ExecOutcome, ExecRequest, MountSource, OutputSink, OutputStream,
};

/// How long output may keep arriving after the container stopped.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Why an attempt could not run: becomes [`ExecOutcome::Errored`].
#[derive(Debug)]
pub(super) struct Failure {
    stage: String,
    message: String,
}

impl Failure {
    pub(super) fn new(stage: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            stage: stage.into(),
            message: message.into(),
        }
    }

    pub(super) fn engine(stage: impl Into<String>, err: &bollard::errors::Error) -> Self {
        Failure::new(stage, chain(err))
    }
}

/// Everything created on the engine so far, so an interrupted attempt can be cleaned up.
#[derive(Default)]
pub(super) struct Created {
    /// Container ids in creation order (services first, the task container last).
    pub(super) containers: Vec<String>,
    /// The task container's id, once created.
    main: Option<String>,
    /// The private network's id, once created.
    pub(super) network: Option<String>,
    /// The task that copies the container's output into the sink.
    pump: Option<JoinHandle<()>>,
    /// Creation requests sent to the engine, see [`tracked`].
    in_flight: Vec<JoinHandle<()>>,
}

/// What a [`tracked`] creation makes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// A service or helper container.
    Container,
    /// The task container.
    Task,
    /// The private network.
    Network,
}

/// Sends a creation request in a task of its own and records the new object's id when the
/// engine answers, even if the attempt was dropped meanwhile (timeout, cancellation): the
/// engine completes a creation whose request was abandoned, so cleanup first waits for every
/// request still in flight. Returns the id, or the engine's reason.
pub(super) async fn tracked<F>(created: &Shared, kind: Kind, request: F) -> Result<String, String>
where
    F: std::future::Future<Output = Result<String, bollard::errors::Error>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let shared = created.clone();
    let handle = tokio::spawn(async move {
        let result = request.await;
        if let Ok(id) = &result {
            record(&shared, |c| match kind {
                Kind::Container => c.containers.push(id.clone()),
                Kind::Task => {
                    c.containers.push(id.clone());
                    c.main = Some(id.clone());
                }
                Kind::Network => c.network = Some(id.clone()),
            });
        }
        let _ = tx.send(result.map_err(|e| chain(&e)));
    });
    record(created, |c| c.in_flight.push(handle));
    rx.await
        .unwrap_or_else(|_| Err("the creation request was abandoned".to_owned()))
}

pub(super) type Shared = Arc<Mutex<Created>>;

pub(super) fn record(created: &Shared, f: impl FnOnce(&mut Created)) {
    // A poisoned lock only means another thread panicked mid-update; the ids are still valid.
    let mut guard = created.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut guard);
}

/// The fixed inputs of one attempt.
pub(super) struct Ctx<'a> {
    pub(super) docker: &'a Docker,
    pub(super) config: &'a DockerConfig,
    pub(super) req: &'a ExecRequest,
    pub(super) spec: &'a ContainerSpec,
    pub(super) attempt: String,
    pub(super) labels: HashMap<String, String>,
}

/// Runs one attempt and removes everything it created.
pub(super) async fn run(
    docker: &Docker,
    config: &DockerConfig,
    req: &ExecRequest,
    spec: &ContainerSpec,
    io: ExecIo,
) -> ExecOutcome {
    let attempt = names::attempt_id();
    let ctx = Ctx {
        docker,
        config,
        req,
        spec,
        labels: names::attempt_labels(&req.run_id, &req.task, &attempt),
        attempt,
    };
    let created: Shared = Arc::default();
    let timeout = async {
        match req.timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let (outcome, interrupted) = tokio::select! {
        biased;
        result = ctx.work(&created, io.output.clone()) => match result {
            Ok(code) => (ExecOutcome::Exited { code }, false),
            Err(f) => (ExecOutcome::Errored { stage: f.stage, message: f.message }, false),
        },
        _ = io.cancel.cancelled() => (ExecOutcome::Cancelled, true),
        _ = timeout => (ExecOutcome::TimedOut, true),
    };
    if interrupted {
        let main = created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .main
            .clone();
        if let Some(id) = main {
            stop(docker, &id, req.kill_grace).await;
        }
    }
    let cleaned = ctx.cleanup(&created, interrupted).await;
    let pump = created
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pump
        .take();
    if let Some(pump) = pump {
        drain(pump).await;
    }
    match cleaned {
        Ok(()) => outcome,
        Err(message) => ExecOutcome::errored(
            "removing the task's containers",
            format!("{message} (the task itself ended as {outcome:?})"),
        ),
    }
}

/// Feeds the engine's stats of container `id` (about one a second) to `sink` as resource
/// samples: CPU time since the previous sample over wall time, and memory in use less the
/// page cache that can be dropped (`inactive_file`), as `docker stats` shows it.
async fn sample_stats(docker: Docker, id: String, sink: Arc<dyn OutputSink>) {
    let options = bollard::query_parameters::StatsOptionsBuilder::default()
        .stream(true)
        .build();
    let mut stats = docker.stats(&id, Some(options));
    let mut last: Option<(u64, std::time::Instant)> = None;
    while let Some(Ok(s)) = stats.next().await {
        let now = std::time::Instant::now();
        let Some(cpu_ns) = s
            .cpu_stats
            .as_ref()
            .and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
        else {
            continue;
        };
        let rss = s.memory_stats.as_ref().map_or(0, |m| {
            let cache = m
                .stats
                .as_ref()
                .and_then(|st| st.get("inactive_file").copied())
                .unwrap_or(0);
            m.usage.unwrap_or(0).saturating_sub(cache)
        });
        if let Some((before, at)) = last {
            let wall = now.duration_since(at).as_secs_f64().max(1e-3);
            let used = cpu_ns.saturating_sub(before) as f64 / 1e9;
            sink.resource_sample((used / wall * 1000.0).round() / 10.0, rss);
        }
        last = Some((cpu_ns, now));
    }
}

/// Waits for the output pump to finish, at most [`DRAIN_LIMIT`].
async fn drain(mut pump: JoinHandle<()>) {
    if tokio::time::timeout(DRAIN_LIMIT, &mut pump).await.is_err() {
        pump.abort();
    }
}

/// SIGTERM, up to `grace` for the container to stop, then SIGKILL. Errors are ignored: the
/// container is force-removed right after.
async fn stop(docker: &Docker, id: &str, grace: Duration) {
    if !grace.is_zero() {
        let term = KillContainerOptionsBuilder::default()
            .signal("SIGTERM")
            .build();
        if docker.kill_container(id, Some(term)).await.is_ok() {
            let mut wait = docker.wait_container(id, None::<WaitContainerOptions>);
            if tokio::time::timeout(grace, wait.next()).await.is_ok() {
                return;
            }
        }
    }
    let kill = KillContainerOptionsBuilder::default()
        .signal("SIGKILL")
        .build();
    let _ = docker.kill_container(id, Some(kill)).await;
}

/// True when the engine said 404 (the object does not exist).
pub(super) fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The last lines a container printed, for error messages.
pub(super) async fn last_output(docker: &Docker, id: &str) -> String {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail("20")
        .build();
    let mut logs = docker.logs(id, Some(opts));
    let mut text = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        if text.len() > 4096 {
            break;
        }
    }
    let text = text.trim_end();
    if text.is_empty() {
        "(no output)".to_owned()
    } else {
        text.to_owned()
    }
}

impl Ctx<'_> {
    /// Everything up to the task's exit code.
    async fn work(&self, created: &Shared, sink: Arc<dyn OutputSink>) -> Result<i32, Failure> {
        let req = self.req;
        let script = match &req.action {
            Action::Shell(script) => script,
            Action::Native(name) => {
                return Err(Failure::new(
                    "preparing the container",
                    format!(
                        "task `{}` is the native function `{name}`, which cannot run inside a container",
                        req.task
                    ),
                ));
            }
        };
        if let Some(dir) = &self.spec.workdir
            && !dir.starts_with('/')
        {
            return Err(Failure::new(
                "preparing the container",
                format!(
                    "task `{}`: container workdir `{dir}` must be an absolute path",
                    req.task
                ),
            ));
        }
        let env = self.env()?;

        // Images first (task and services), so a missing one fails before anything starts.
        ensure_image(self.docker, &self.spec.image).await?;
        let mut service_images: Vec<ImageInspect> = Vec::with_capacity(self.spec.services.len());
        for svc in &self.spec.services {
            service_images.push(ensure_image(self.docker, &svc.image).await?);
        }
        let mounts = self.mounts(created).await?;

        let network = if self.spec.services.is_empty() {
            None
        } else {
            let name = services::start_all(self, created, &service_images).await?;
            Some(name)
        };

        let name = names::container_name(&req.task, &self.attempt, None);
        let body = ContainerCreateBody {
            image: Some(self.spec.image.clone()),
            entrypoint: Some(vec!["/bin/sh".to_owned(), "-c".to_owned()]),
            cmd: Some(vec![script.clone()]),
            env: Some(env),
            working_dir: self.spec.workdir.clone(),
            user: self.user(),
            labels: Some(self.labels.clone()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            attach_stdin: Some(false),
            tty: Some(false),
            open_stdin: Some(false),
            host_config: Some(HostConfig {
                mounts: Some(mounts),
                init: Some(self.config.init),
                network_mode: network,
                ..Default::default()
            }),
            ..Default::default()
        };
        let docker = self.docker.clone();
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let id = tracked(created, Kind::Task, async move {
            docker
                .create_container(Some(options), body)
                .await
                .map(|r| r.id)
        })
        .await
        .map_err(|e| Failure::new(format!("creating the container of task `{}`", req.task), e))?;

        // Attach before starting, so no output is missed.
        let attach = AttachContainerOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(true)
            .build();
        let mut output = self
            .docker
            .attach_container(&id, Some(attach))
            .await
            .map_err(|e| Failure::engine("attaching to the container", &e))?
            .output;
        let stats_sink = sink.clone();
        let pump = tokio::spawn(async move {
            while let Some(item) = output.next().await {
                match item {
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                        sink.write(OutputStream::Stdout, &message)
                    }
                    Ok(LogOutput::StdErr { message }) => sink.write(OutputStream::Stderr, &message),
                    Ok(LogOutput::StdIn { .. }) => {}
                    Err(e) => {
                        let note = format!(
                            "sykli: the container's output stream broke off: {}\n",
                            chain(&e)
                        );
                        sink.write(OutputStream::Stderr, note.as_bytes());
                        break;
                    }
                }
            }
        });
        record(created, |c| c.pump = Some(pump));

        self.docker.start_container(&id, None).await.map_err(|e| {
            Failure::engine(format!("starting the container of task `{}`", req.task), &e)
        })?;

        // Resource samples from the engine's stats stream while it runs.
        let stats = tokio::spawn(sample_stats(self.docker.clone(), id.clone(), stats_sink));
        let code = self.wait_exit(&id).await;
        stats.abort();
        let code = code?;
        let pump = created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pump
            .take();
        if let Some(pump) = pump {
            drain(pump).await;
        }
        Ok(code)
    }

    /// Waits until the container stops and returns its exit code.
    async fn wait_exit(&self, id: &str) -> Result<i32, Failure> {
        let mut wait = self.docker.wait_container(id, None::<WaitContainerOptions>);
        match wait.next().await {
            Some(Ok(resp)) => Ok(exit_code(resp.status_code)),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                Ok(exit_code(code))
            }
            Some(Err(e)) => Err(Failure::engine("waiting for the container", &e)),
            None => {
                let state = self
                    .docker
                    .inspect_container(id, None)
                    .await
                    .map_err(|e| Failure::engine("inspecting the stopped container", &e))?
                    .state;
                match state.and_then(|s| s.exit_code) {
                    Some(code) => Ok(exit_code(code)),
                    None => Err(Failure::new(
                        "waiting for the container",
                        "the engine reported no exit code",
                    )),
                }
            }
        }
    }

    /// The container environment as `KEY=value` lines. The host environment is never passed
    /// into a container, whatever `inherit_env` says.
    fn env(&self) -> Result<Vec<String>, Failure> {
        let mut out = Vec::with_capacity(self.req.env.len());
        for (key, value) in &self.req.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(Failure::new(
                    "preparing the container",
                    format!(
                        "task `{}`: environment variable name `{key}` is not valid (empty, or contains `=` or NUL)",
                        self.req.task
                    ),
                ));
            }
            out.push(format!("{key}={value}"));
        }
        Ok(out)
    }

    fn user(&self) -> Option<String> {
        match &self.config.user {
            UserMapping::Invoking => Some(format!(
                "{}:{}",
                nix::unistd::getuid(),
                nix::unistd::getgid()
            )),
            UserMapping::Image => None,
            UserMapping::Fixed(user) => Some(user.clone()),
        }
    }

    /// Bind mounts for host directories, named volumes for caches (created when missing).
    async fn mounts(&self, created: &Shared) -> Result<Vec<Mount>, Failure> {
        let task = &self.req.task;
        let mut out = Vec::with_capacity(self.spec.mounts.len());
        for m in &self.spec.mounts {
            if !m.target.starts_with('/') {
                return Err(Failure::new(
                    "preparing mounts",
                    format!(
                        "task `{task}`: mount target `{}` must be an absolute path",
                        m.target
                    ),
                ));
            }
            let mount = match &m.source {
                MountSource::HostDir(dir) => {
                    let dir = if dir.is_absolute() {
                        dir.clone()
                    } else {
                        self.req.workdir.join(dir)
                    };
                    if !Path::new(&dir).is_dir() {
                        return Err(Failure::new(
                            "preparing mounts",
                            format!(
                                "task `{task}`: host directory `{}` for the mount at `{}` does not exist or is not a directory",
                                dir.display(),
                                m.target
                            ),
                        ));
                    }
                    Mount {
                        typ: Some(MountType::BIND),
                        source: Some(dir.to_string_lossy().into_owned()),
                        target: Some(m.target.clone()),
                        read_only: Some(false),
                        ..Default::default()
                    }
                }
                MountSource::Volume(cache) => {
                    let volume = names::cache_volume_name(cache);
                    self.prepare_volume(created, cache, &volume).await?;
                    Mount {
                        typ: Some(MountType::VOLUME),
                        source: Some(volume),
                        target: Some(m.target.clone()),
                        read_only: Some(false),
                        ..Default::default()
                    }
                }
            };
            out.push(mount);
        }
        Ok(out)
    }

    /// Creates the cache volume when missing. A new volume belongs to root; when the task
    /// runs as another user, a short-lived root container of the task image hands it over
    /// with `chown`, so the task can write its cache.
    async fn prepare_volume(
        &self,
        created: &Shared,
        cache: &str,
        volume: &str,
    ) -> Result<(), Failure> {
        let stage = || format!("preparing cache volume {volume}");
        match self.docker.inspect_volume(volume).await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Failure::engine(stage(), &e)),
        }
        let labels = HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_CACHE.to_owned(), cache.to_owned()),
        ]);
        // Idempotent: a volume created meanwhile by a parallel task is returned unchanged.
        self.docker
            .create_volume(bollard::models::VolumeCreateRequest {
                name: Some(volume.to_owned()),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map_err(|e| Failure::engine(stage(), &e))?;
        let Some(user) = self.user().filter(|u| !is_root(u)) else {
            return Ok(());
        };
        const AT: &str = "/sykli-volume";
        let body = ContainerCreateBody {
            image: Some(self.spec.image.clone()),
            user: Some("0:0".to_owned()),
            entrypoint: Some(vec!["chown".to_owned(), user.clone(), AT.to_owned()]),
            labels: Some(self.labels.clone()),
            host_config: Some(HostConfig {
                mounts: Some(vec![Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(volume.to_owned()),
                    target: Some(AT.to_owned()),
                    ..Default::default()
                }]),
                network_mode: Some("none".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let docker = self.docker.clone();
        let id = tracked(created, Kind::Container, async move {
            docker
                .create_container(
                    None::<bollard::query_parameters::CreateContainerOptions>,
                    body,
                )
                .await
                .map(|r| r.id)
        })
        .await
        .map_err(|e| Failure::new(stage(), e))?;
        self.docker
            .start_container(&id, None)
            .await
            .map_err(|e| Failure::engine(stage(), &e))?;
        let code = self.wait_exit(&id).await?;
        if code != 0 {
            return Err(Failure::new(
                stage(),
                format!(
                    "task `{}`: could not hand the new cache volume to user {user}: `chown` in image {} exited with code {code}: {}",
                    self.req.task,
                    self.spec.image,
                    last_output(self.docker, &id).await
                ),
            ));
        }
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        if let Err(e) = self.docker.remove_container(&id, Some(opts)).await
            && !is_not_found(&e)
        {
            return Err(Failure::engine(stage(), &e));
        }
        Ok(())
    }

    /// Removes every container and the network of this attempt. With `sweep`, also whatever
    /// carries this attempt's label (something may have been created by a request that was
    /// interrupted before it answered).
    async fn cleanup(&self, created: &Shared, sweep: bool) -> Result<(), String> {
        let in_flight =
            std::mem::take(&mut created.lock().unwrap_or_else(|p| p.into_inner()).in_flight);
        futures::future::join_all(in_flight).await;
        let (mut ids, network) = {
            let c = created.lock().unwrap_or_else(|p| p.into_inner());
            (c.containers.clone(), c.network.clone())
        };
        let mut errors = Vec::new();
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_ATTEMPT}={}", self.attempt)],
        )]);
        if sweep {
            match self
                .docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::default()
                        .all(true)
                        .filters(&filters)
                        .build(),
                ))
                .await
            {
                Ok(list) => {
                    for id in list.into_iter().filter_map(|c| c.id) {
                        if !ids.contains(&id) {
                            ids.push(id);
                        }
                    }
                }
                Err(e) => errors.push(format!("failed to list containers: {}", chain(&e))),
            }
        }
        let removals = ids.iter().map(|id| async move {
            let opts = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            match self.docker.remove_container(id, Some(opts)).await {
                Ok(()) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(format!("failed to remove container {id}: {}", chain(&e))),
            }
        });
        for result in futures::future::join_all(removals).await {
            if let Err(e) = result {
                errors.push(e);
            }
        }

        let mut networks: Vec<String> = network.into_iter().collect();
        if sweep {
            match self
                .docker
                .list_networks(Some(
                    ListNetworksOptionsBuilder::default()
                        .filters(&filters)
                        .build(),
                ))
                .await
            {
                Ok(list) => {
                    for id in list.into_iter().filter_map(|n| n.id) {
                        if !networks.contains(&id) {
                            networks.push(id);
                        }
                    }
                }
                Err(e) => errors.push(format!("failed to list networks: {}", chain(&e))),
            }
        }
        for id in networks {
            match self.docker.remove_network(&id).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => errors.push(format!("failed to remove network {id}: {}", chain(&e))),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// Whether a `user[:group]` names root.
fn is_root(user: &str) -> bool {
    matches!(user.split(':').next(), Some("0" | "root"))
}

fn exit_code(code: i64) -> i32 {
    i32::try_from(code).unwrap_or(i32::MAX)
}

/// Makes sure `image` is present: the local copy when there is one, else a pull.
pub(super) async fn ensure_image(docker: &Docker, image: &str) -> Result<ImageInspect, Failure> {
    match docker.inspect_image(image).await {
        Ok(found) => return Ok(found),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(Failure::engine(format!("inspecting image {image}"), &e)),
    }
    let not_pulled = |reason: String| {
        Failure::new(
            format!("pulling image {image}"),
            format!("image `{image}` is not present locally and could not be pulled: {reason}"),
        )
    };
    let (from, tag) = names::split_image_ref(image);
    let mut opts = CreateImageOptionsBuilder::default().from_image(&from);
    if !tag.is_empty() {
        opts = opts.tag(&tag);
    }
    let mut progress = docker.create_image(Some(opts.build()), None, None);
    while let Some(item) = progress.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail {
                    return Err(not_pulled(
                        detail.message.unwrap_or_else(|| "unknown error".to_owned()),
                    ));
                }
            }
            Err(e) => return Err(not_pulled(chain(&e))),
        }
    }
    docker.inspect_image(image).await.map_err(|e| {
        not_pulled(format!(
            "the pull finished but the image is missing: {}",
            chain(&e)
        ))
    })
}
