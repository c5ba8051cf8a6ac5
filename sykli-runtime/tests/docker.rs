//! Container tasks against a real Docker-compatible engine.
//!
//! These tests need an engine and the local test images: run `.ci/docker-setup.sh` first.
//! Without them every test fails (never skips) and says so.
#![cfg(feature = "docker")]

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
};
use sykli_runtime::exec::container::{
    DockerConfig, DockerExecutor, LABEL_MANAGED, LABEL_RUN, UserMapping, cache_volume_name,
};
use sykli_runtime::exec::{
    Action, ContainerMount, ContainerSpec, ExecIo, ExecOutcome, ExecRequest, Executor, MountSource,
    OutputSink, OutputStream, ServiceSpec,
};
use tokio_util::sync::CancellationToken;

const BUSYBOX: &str = "sykli-test/busybox:latest";
const ECHO_SERVER: &str = "sykli-test/echo-server:latest";
const HEALTHY_SERVER: &str = "sykli-test/healthy-server:latest";
const BROKEN_SERVICE: &str = "sykli-test/broken-service:latest";
const WEB_NO_SHELL: &str = "sykli-test/web-noshell:latest";
const SETUP_HINT: &str =
    "run .ci/docker-setup.sh (starts dockerd and builds the sykli-test images)";

/// Output captured with arrival times.
#[derive(Default)]
struct Capture {
    chunks: Mutex<Vec<(Instant, OutputStream, Vec<u8>)>>,
}

impl OutputSink for Capture {
    fn write(&self, stream: OutputStream, bytes: &[u8]) {
        self.chunks
            .lock()
            .expect("capture lock")
            .push((Instant::now(), stream, bytes.to_vec()));
    }
}

impl Capture {
    fn text(&self, stream: OutputStream) -> String {
        let chunks = self.chunks.lock().expect("capture lock");
        let bytes: Vec<u8> = chunks
            .iter()
            .filter(|(_, s, _)| *s == stream)
            .flat_map(|(_, _, b)| b.iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// When the first chunk containing `needle` arrived.
    fn arrival_of(&self, needle: &str) -> Option<Instant> {
        let chunks = self.chunks.lock().expect("capture lock");
        chunks
            .iter()
            .find(|(_, _, b)| String::from_utf8_lossy(b).contains(needle))
            .map(|(t, _, _)| *t)
    }
}

/// The engine the tests use; fails the test with a hint when there is none.
async fn engine() -> Docker {
    let docker = Docker::connect_with_defaults()
        .unwrap_or_else(|e| panic!("cannot set up a Docker client ({e}): {SETUP_HINT}"));
    if let Err(e) = docker.ping().await {
        panic!("no Docker engine answers ({e}): {SETUP_HINT}");
    }
    let docker = docker
        .negotiate_version()
        .await
        .unwrap_or_else(|e| panic!("cannot agree on an API version ({e}): {SETUP_HINT}"));
    for image in [
        BUSYBOX,
        ECHO_SERVER,
        HEALTHY_SERVER,
        BROKEN_SERVICE,
        WEB_NO_SHELL,
    ] {
        if let Err(e) = docker.inspect_image(image).await {
            panic!("test image {image} is missing ({e}): {SETUP_HINT}");
        }
    }
    docker
}

async fn executor(config: DockerConfig) -> (Docker, DockerExecutor) {
    let docker = engine().await;
    let exec = DockerExecutor::with_config(config).expect("docker executor");
    (docker, exec)
}

fn run_id(name: &str) -> String {
    format!("test-{name}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    t ^ std::process::id().rotate_left(16)
}

fn request(run_id: &str, task: &str, script: &str, spec: ContainerSpec) -> ExecRequest {
    ExecRequest {
        task: task.to_owned(),
        action: Action::Shell(script.to_owned()),
        env: BTreeMap::new(),
        inherit_env: false,
        workdir: std::env::temp_dir(),
        container: Some(spec),
        timeout: Some(Duration::from_secs(60)),
        kill_grace: Duration::from_secs(5),
        run_id: run_id.to_owned(),
        background: None,
        sandbox: None,
    }
}

fn spec(image: &str) -> ContainerSpec {
    ContainerSpec {
        image: image.to_owned(),
        workdir: None,
        mounts: Vec::new(),
        services: Vec::new(),
    }
}

async fn execute(exec: &DockerExecutor, req: &ExecRequest) -> (ExecOutcome, Arc<Capture>) {
    let capture = Arc::new(Capture::default());
    let io = ExecIo {
        attempt: 1,
        output: capture.clone(),
        cancel: CancellationToken::new(),
        operations: None,
    };
    let outcome = exec.execute(req, io).await;
    (outcome, capture)
}

/// Containers and networks of `run` still on the engine.
async fn leftovers(docker: &Docker, run: &str) -> (Vec<String>, Vec<String>) {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{LABEL_RUN}={run}"),
            format!("{LABEL_MANAGED}=true"),
        ],
    )]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers")
        .into_iter()
        .map(|c| c.names.unwrap_or_default().join(","))
        .collect();
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list networks")
        .into_iter()
        .map(|n| n.name.unwrap_or_default())
        .collect();
    (containers, networks)
}

async fn assert_nothing_left(docker: &Docker, run: &str) {
    let (containers, networks) = leftovers(docker, run).await;
    assert!(
        containers.is_empty() && networks.is_empty(),
        "run {run} left containers {containers:?} and networks {networks:?}"
    );
}

#[tokio::test]
async fn output_streams_live_and_exit_code_is_reported() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("stream");
    let req = request(
        &run,
        "stream",
        "echo first; echo oops >&2; sleep 1.5; echo second; exit 3",
        spec(BUSYBOX),
    );
    let (outcome, out) = execute(&exec, &req).await;
    let finished = Instant::now();
    assert_eq!(outcome, ExecOutcome::Exited { code: 3 });
    assert_eq!(out.text(OutputStream::Stdout), "first\nsecond\n");
    assert_eq!(out.text(OutputStream::Stderr), "oops\n");
    let first = out.arrival_of("first").expect("first line arrived");
    assert!(
        finished.duration_since(first) >= Duration::from_millis(1000),
        "output was not streamed live: `first` arrived {:?} before the end",
        finished.duration_since(first)
    );
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn exit_codes_pass_through() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("codes");
    for code in [0, 1, 42] {
        let req = request(&run, "codes", &format!("exit {code}"), spec(BUSYBOX));
        let (outcome, _) = execute(&exec, &req).await;
        assert_eq!(outcome, ExecOutcome::Exited { code });
    }
    // Killed by a signal: 128 + signal number.
    let req = request(&run, "codes", "kill -9 $$", spec(BUSYBOX));
    let (outcome, _) = execute(&exec, &req).await;
    assert_eq!(outcome, ExecOutcome::Exited { code: 137 });
    assert_nothing_left(&docker, &run).await;
}

fn project_with_input() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("input.txt"), "from the host\n").expect("write input");
    dir
}

fn mounted_spec(dir: &std::path::Path) -> ContainerSpec {
    ContainerSpec {
        image: BUSYBOX.to_owned(),
        workdir: Some("/work".to_owned()),
        mounts: vec![ContainerMount {
            source: MountSource::HostDir(dir.to_path_buf()),
            target: "/work".to_owned(),
        }],
        services: Vec::new(),
    }
}

#[tokio::test]
async fn host_mount_works_both_ways_and_files_belong_to_the_invoking_user() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("mount");
    let project = project_with_input();
    let req = request(
        &run,
        "mount",
        "cat input.txt && mkdir -p out && echo made inside > out/written.txt && id -u",
        mounted_spec(project.path()),
    );
    let (outcome, out) = execute(&exec, &req).await;
    assert_eq!(
        outcome,
        ExecOutcome::Exited { code: 0 },
        "stderr: {}",
        out.text(OutputStream::Stderr)
    );
    let uid = nix::unistd::getuid().as_raw();
    assert_eq!(
        out.text(OutputStream::Stdout),
        format!("from the host\n{uid}\n")
    );
    let written = project.path().join("out/written.txt");
    assert_eq!(
        std::fs::read_to_string(&written).expect("file written inside the container"),
        "made inside\n"
    );
    let meta = std::fs::metadata(&written).expect("metadata");
    assert_eq!(
        meta.uid(),
        uid,
        "file written in the container is not owned by the invoking user"
    );
    assert_eq!(meta.gid(), nix::unistd::getgid().as_raw());
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn user_mapping_is_configurable() {
    let config = DockerConfig {
        user: UserMapping::Fixed("4321:4322".to_owned()),
        ..DockerConfig::default()
    };
    let (docker, exec) = executor(config).await;
    let run = run_id("user");
    let project = project_with_input();
    std::fs::set_permissions(
        project.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let req = request(
        &run,
        "user",
        "touch mine && id -u && id -g",
        mounted_spec(project.path()),
    );
    let (outcome, out) = execute(&exec, &req).await;
    assert_eq!(
        outcome,
        ExecOutcome::Exited { code: 0 },
        "{}",
        out.text(OutputStream::Stderr)
    );
    assert_eq!(out.text(OutputStream::Stdout), "4321\n4322\n");
    let meta = std::fs::metadata(project.path().join("mine")).expect("file made inside");
    assert_eq!((meta.uid(), meta.gid()), (4321, 4322));
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn cache_volume_persists_between_executions() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("cache");
    let cache = format!("test/cache-{}", rand_suffix());
    let with_cache = ContainerSpec {
        mounts: vec![ContainerMount {
            source: MountSource::Volume(cache.clone()),
            target: "/cache".to_owned(),
        }],
        ..spec(BUSYBOX)
    };
    let write = request(
        &run,
        "cache-write",
        "echo kept > /cache/stamp",
        with_cache.clone(),
    );
    let (outcome, out) = execute(&exec, &write).await;
    assert_eq!(
        outcome,
        ExecOutcome::Exited { code: 0 },
        "{}",
        out.text(OutputStream::Stderr)
    );
    let read = request(&run, "cache-read", "cat /cache/stamp", with_cache);
    let (outcome, out) = execute(&exec, &read).await;
    let volume = cache_volume_name(&cache);
    let inspected = docker.inspect_volume(&volume).await;
    let _ = docker
        .remove_volume(
            &volume,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await;
    assert_eq!(
        outcome,
        ExecOutcome::Exited { code: 0 },
        "{}",
        out.text(OutputStream::Stderr)
    );
    assert_eq!(out.text(OutputStream::Stdout), "kept\n");
    let labels = inspected.expect("cache volume exists").labels;
    assert_eq!(labels.get(LABEL_MANAGED).map(String::as_str), Some("true"));
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn new_cache_volume_is_writable_by_a_non_root_user() {
    let config = DockerConfig {
        user: UserMapping::Fixed("4321:4322".to_owned()),
        ..DockerConfig::default()
    };
    let (docker, exec) = executor(config).await;
    let run = run_id("cacheuser");
    let cache = format!("test-user-cache-{}", rand_suffix());
    let with_cache = ContainerSpec {
        mounts: vec![ContainerMount {
            source: MountSource::Volume(cache.clone()),
            target: "/cache".to_owned(),
        }],
        ..spec(BUSYBOX)
    };
    let req = request(
        &run,
        "cacheuser",
        "echo ok > /cache/f && stat -c %u:%g /cache",
        with_cache,
    );
    let (outcome, out) = execute(&exec, &req).await;
    let _ = docker
        .remove_volume(
            &cache_volume_name(&cache),
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await;
    assert_eq!(
        outcome,
        ExecOutcome::Exited { code: 0 },
        "{}",
        out.text(OutputStream::Stderr)
    );
    assert_eq!(out.text(OutputStream::Stdout), "4321:4322\n");
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn env_and_workdir_reach_the_task() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("env");
    let mut req = request(
        &run,
        "env",
        "echo \"$GREETING|$EMPTY|$SPACED\"; pwd",
        ContainerSpec {
            workdir: Some("/srv/place".to_owned()),
            ..spec(BUSYBOX)
        },
    );
    req.env.insert("GREETING".into(), "hello".into());
    req.env.insert("EMPTY".into(), String::new());
    req.env.insert("SPACED".into(), "a b  c".into());
    let (outcome, out) = execute(&exec, &req).await;
    assert_eq!(
        outcome,
        ExecOutcome::Exited { code: 0 },
        "{}",
        out.text(OutputStream::Stderr)
    );
    assert_eq!(
        out.text(OutputStream::Stdout),
        "hello||a b  c\n/srv/place\n"
    );
    assert_nothing_left(&docker, &run).await;
}

fn with_echo_service() -> ContainerSpec {
    ContainerSpec {
        services: vec![ServiceSpec {
            image: ECHO_SERVER.to_owned(),
            name: "echo".to_owned(),
        }],
        ..spec(BUSYBOX)
    }
}

#[tokio::test]
async fn service_is_ready_and_reachable_by_name() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("service");
    // No retry loop in the task: the service must already accept connections.
    let req = request(
        &run,
        "service",
        "nc echo 7777 </dev/null",
        with_echo_service(),
    );
    let (outcome, out) = execute(&exec, &req).await;
    assert_eq!(
        outcome,
        ExecOutcome::Exited { code: 0 },
        "{}",
        out.text(OutputStream::Stderr)
    );
    assert_eq!(out.text(OutputStream::Stdout), "hello from service\n");
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn service_with_health_check_is_awaited() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("health");
    let spec = ContainerSpec {
        services: vec![ServiceSpec {
            image: HEALTHY_SERVER.to_owned(),
            name: "api".to_owned(),
        }],
        ..spec(BUSYBOX)
    };
    // The server listens about 1 s after it starts; the task must not start before.
    let req = request(&run, "health", "nc api 7777 </dev/null", spec);
    let (outcome, out) = execute(&exec, &req).await;
    assert_eq!(
        outcome,
        ExecOutcome::Exited { code: 0 },
        "{}",
        out.text(OutputStream::Stderr)
    );
    assert_eq!(
        out.text(OutputStream::Stdout),
        "hello from service
"
    );
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn service_without_a_shell_is_probed_over_the_network() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("noshell");
    let spec = ContainerSpec {
        services: vec![ServiceSpec {
            image: WEB_NO_SHELL.to_owned(),
            name: "web".to_owned(),
        }],
        ..spec(BUSYBOX)
    };
    let req = request(&run, "noshell", "wget -q -O - http://web:7777/", spec);
    let (outcome, out) = execute(&exec, &req).await;
    assert_eq!(
        outcome,
        ExecOutcome::Exited { code: 0 },
        "{}",
        out.text(OutputStream::Stderr)
    );
    assert_eq!(out.text(OutputStream::Stdout), "hello from web\n");
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn service_that_exits_fails_clearly() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("badsvc");
    let spec = ContainerSpec {
        services: vec![ServiceSpec {
            image: BROKEN_SERVICE.to_owned(),
            name: "db".to_owned(),
        }],
        ..spec(BUSYBOX)
    };
    let req = request(&run, "badsvc", "echo should not run", spec);
    let (outcome, out) = execute(&exec, &req).await;
    let ExecOutcome::Errored { stage, message } = outcome else {
        panic!("expected errored, got {outcome:?}");
    };
    assert!(stage.contains("service `db`"), "{stage}");
    assert!(message.contains("exited with code 3"), "{message}");
    assert!(message.contains("cannot start"), "{message}");
    assert_eq!(out.text(OutputStream::Stdout), "");
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn timeout_stops_task_and_removes_containers_and_network() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("timeout");
    let mut req = request(
        &run,
        "timeout",
        "echo started; sleep 60",
        with_echo_service(),
    );
    req.timeout = Some(Duration::from_secs(2));
    // SIGTERM must end the task well within the grace period.
    req.kill_grace = Duration::from_secs(30);
    let start = Instant::now();
    let (outcome, out) = execute(&exec, &req).await;
    let took = start.elapsed();
    assert_eq!(outcome, ExecOutcome::TimedOut);
    assert!(took < Duration::from_secs(15), "stopping took {took:?}");
    assert_eq!(out.text(OutputStream::Stdout), "started\n");
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn sigkill_follows_when_sigterm_is_ignored() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("stubborn");
    let mut req = request(
        &run,
        "stubborn",
        "trap '' TERM; echo ready; while true; do sleep 0.1; done",
        spec(BUSYBOX),
    );
    req.timeout = Some(Duration::from_secs(1));
    req.kill_grace = Duration::from_millis(500);
    let start = Instant::now();
    let (outcome, _) = execute(&exec, &req).await;
    assert_eq!(outcome, ExecOutcome::TimedOut);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn cancellation_stops_task_and_removes_everything() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("cancel");
    let mut req = request(&run, "cancel", "sleep 60", with_echo_service());
    req.timeout = None;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        trigger.cancel();
    });
    let io = ExecIo {
        attempt: 1,
        output: Arc::new(Capture::default()),
        cancel,
        operations: None,
    };
    let start = Instant::now();
    let outcome = exec.execute(&req, io).await;
    assert_eq!(outcome, ExecOutcome::Cancelled);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
    assert_nothing_left(&docker, &run).await;
}

/// Regression: a creation request abandoned by a cancellation was still completed by the
/// engine, leaving a service container behind after the attempt had cleaned up.
#[tokio::test]
async fn cancellation_at_any_point_leaves_nothing_behind() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("cancelsweep");
    for delay_ms in [0, 5, 10, 20, 40, 80, 160, 320] {
        let mut req = request(&run, "cancelsweep", "sleep 60", with_echo_service());
        req.kill_grace = Duration::from_millis(200);
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            trigger.cancel();
        });
        let io = ExecIo {
            attempt: 1,
            output: Arc::new(Capture::default()),
            cancel,
            operations: None,
        };
        let outcome = exec.execute(&req, io).await;
        assert_eq!(
            outcome,
            ExecOutcome::Cancelled,
            "cancelled after {delay_ms} ms"
        );
    }
    // Anything created by an abandoned request would show up by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn missing_image_errors_clearly() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("noimage");
    let image = "sykli-test/does-not-exist:never";
    let req = request(&run, "noimage", "true", spec(image));
    let (outcome, _) = execute(&exec, &req).await;
    let ExecOutcome::Errored { stage, message } = outcome else {
        panic!("expected errored, got {outcome:?}");
    };
    assert!(stage.contains(image), "{stage}");
    assert!(
        message.contains(&format!(
            "image `{image}` is not present locally and could not be pulled: "
        )),
        "{message}"
    );
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn missing_host_directory_errors_clearly() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("nodir");
    let missing = PathBuf::from("/nonexistent/sykli/project");
    let req = request(&run, "nodir", "true", mounted_spec(&missing));
    let (outcome, _) = execute(&exec, &req).await;
    let ExecOutcome::Errored { message, .. } = outcome else {
        panic!("expected errored, got {outcome:?}");
    };
    assert!(message.contains("task `nodir`"), "{message}");
    assert!(message.contains("/nonexistent/sykli/project"), "{message}");
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn tasks_the_executor_cannot_run_error_clearly() {
    let (_docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("misfit");
    let mut native = request(&run, "native", "", spec(BUSYBOX));
    native.action = Action::Native("build_docs".into());
    let (outcome, _) = execute(&exec, &native).await;
    assert!(
        matches!(&outcome, ExecOutcome::Errored { message, .. } if message.contains("build_docs")),
        "{outcome:?}"
    );
    let mut bare = request(&run, "bare", "true", spec(BUSYBOX));
    bare.container = None;
    let (outcome, _) = execute(&exec, &bare).await;
    assert!(
        matches!(&outcome, ExecOutcome::Errored { message, .. } if message.contains("no container")),
        "{outcome:?}"
    );
}

async fn assert_no_engine_error(exec: &DockerExecutor, host: &str) {
    let req = request("test-noengine", "needs-engine", "true", spec(BUSYBOX));
    let (outcome, _) = execute(exec, &req).await;
    let ExecOutcome::Errored { message, .. } = outcome else {
        panic!("expected errored, got {outcome:?}");
    };
    assert!(
        message.starts_with(&format!(
            "no container engine reachable at {host}: is dockerd running?"
        )),
        "{message}"
    );
}

#[tokio::test]
async fn no_engine_errors_clearly_without_failing_construction() {
    let host = "unix:///nonexistent/sykli/docker.sock";
    let exec = DockerExecutor::with_config(DockerConfig {
        host: Some(host.to_owned()),
        ..DockerConfig::default()
    })
    .expect("constructing needs no engine");
    assert_no_engine_error(&exec, host).await;
}

/// Run by [`no_engine_via_docker_host`] in a child process with `DOCKER_HOST` set, so the
/// environment of the other tests is not touched.
#[tokio::test]
#[ignore = "run by no_engine_via_docker_host with DOCKER_HOST pointing at a dead socket"]
async fn no_engine_child() {
    let host = std::env::var("DOCKER_HOST").expect("DOCKER_HOST set by the parent test");
    let exec = DockerExecutor::connect().expect("constructing needs no engine");
    assert_eq!(exec.host(), host);
    assert_no_engine_error(&exec, &host).await;
}

#[test]
fn no_engine_via_docker_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = format!("unix://{}/dead.sock", dir.path().display());
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "no_engine_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env("DOCKER_HOST", &host)
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn cleanup_leftovers_removes_labelled_containers_and_networks() {
    let (docker, exec) = executor(DockerConfig::default()).await;
    let run = run_id("leftover");
    let labels = HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_RUN.to_owned(), run.clone()),
    ]);
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: format!("sykli-{run}"),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
        .expect("create network");
    let id = docker
        .create_container(
            Some(
                CreateContainerOptionsBuilder::default()
                    .name(&format!("sykli-{run}"))
                    .build(),
            ),
            ContainerCreateBody {
                image: Some(BUSYBOX.to_owned()),
                cmd: Some(vec!["sleep".into(), "60".into()]),
                labels: Some(labels),
                ..Default::default()
            },
        )
        .await
        .expect("create container")
        .id;
    docker.start_container(&id, None).await.expect("start");
    let report = exec.cleanup_leftovers(Some(&run)).await.expect("cleanup");
    assert_eq!((report.containers, report.networks), (1, 1));
    assert_nothing_left(&docker, &run).await;
}
