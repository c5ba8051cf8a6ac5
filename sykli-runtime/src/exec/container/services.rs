//! Sidecar services: a private network per attempt, one container per service reachable by
//! its name, and readiness checks before the task starts.
//!
//! A service is ready when its image's HEALTHCHECK reports healthy; without one, when every
//! TCP port the image exposes is listening; without either, once it runs. Ports are probed
//! from inside the service's own network namespace (an exec of `/bin/sh` reading
//! `/proc/net/tcp`, which works with remote and rootless engines too); an image without a
//! shell is probed by connecting to its address on the private network from here instead.
//! No fixed sleeps: the state is polled until ready, exited or out of time.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthStatusEnum, HostConfig, ImageInspect,
    NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use futures::StreamExt;
use tokio::time::Instant;

use super::attempt::{Ctx, Failure, Kind, Shared, last_output, tracked};
use super::names::{self, LABEL_SERVICE};
use crate::exec::ServiceSpec;

/// Pause between two readiness probes.
const POLL: Duration = Duration::from_millis(50);
/// Limit of one TCP connection attempt.
const CONNECT_LIMIT: Duration = Duration::from_millis(500);

/// Exits 0 when every port given as an argument (4 upper-case hex digits) is in LISTEN state
/// (`0A`) in this network namespace, 1 when one is not, 3 when `/proc/net/tcp*` is unreadable.
const LISTENING_SCRIPT: &str = r#"seen=
for p in "$@"; do
  found=
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    seen=1
    while read -r _ local _ st _; do
      case "$local" in *:"$p") [ "$st" = 0A ] && found=1 ;; esac
    done < "$f"
  done
  [ -n "$seen" ] || exit 3
  [ -n "$found" ] || exit 1
done
exit 0"#;

/// How the ports of a service are probed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PortProbe {
    /// An exec inside the service container.
    Inside,
    /// A TCP connection from here to its address on the private network.
    FromHere,
}

/// Answer of one probe from inside the service container.
enum Inside {
    Listening,
    NotYet,
    /// The image cannot run the probe (no `/bin/sh`, no `/proc/net/tcp`).
    Unsupported,
}

/// Probes `ports` inside the container `id`.
async fn listening_inside(
    docker: &bollard::Docker,
    id: &str,
    ports: &[u16],
) -> Result<Inside, bollard::errors::Error> {
    let mut cmd = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        LISTENING_SCRIPT.to_owned(),
        "sh".to_owned(),
    ];
    cmd.extend(ports.iter().map(|p| format!("{p:04X}")));
    let exec = match docker
        .create_exec(
            id,
            CreateExecOptions {
                cmd: Some(cmd),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
    {
        Ok(exec) => exec,
        // 409: the container is not running (it is inspected again on the next poll).
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => return Ok(Inside::NotYet),
        Err(e) => return Err(e),
    };
    match docker.start_exec(&exec.id, None::<StartExecOptions>).await {
        Ok(StartExecResults::Attached { mut output, .. }) => while output.next().await.is_some() {},
        Ok(StartExecResults::Detached) => {}
        // The engine could not start `/bin/sh` at all.
        Err(bollard::errors::Error::DockerResponseServerError { .. }) => {
            return Ok(Inside::Unsupported);
        }
        Err(e) => return Err(e),
    }
    let code = docker.inspect_exec(&exec.id).await?.exit_code;
    Ok(match code {
        Some(0) => Inside::Listening,
        Some(1) => Inside::NotYet,
        _ => Inside::Unsupported,
    })
}

/// Creates the private network, starts every service on it and waits until all are ready.
/// Returns the network's name.
pub(super) async fn start_all(
    ctx: &Ctx<'_>,
    created: &Shared,
    images: &[ImageInspect],
) -> Result<String, Failure> {
    let task = &ctx.req.task;
    let mut seen = HashSet::new();
    for svc in &ctx.spec.services {
        if !valid_hostname(&svc.name) {
            return Err(Failure::new(
                "starting services",
                format!(
                    "task `{task}`: service name `{}` is not a valid hostname (letters, digits, `-`, `.`; at most 63 characters)",
                    svc.name
                ),
            ));
        }
        if !seen.insert(svc.name.as_str()) {
            return Err(Failure::new(
                "starting services",
                format!("task `{task}`: two services are named `{}`", svc.name),
            ));
        }
    }

    let network = names::network_name(task, &ctx.attempt);
    let docker = ctx.docker.clone();
    let request = NetworkCreateRequest {
        name: network.clone(),
        driver: Some("bridge".to_owned()),
        labels: Some(ctx.labels.clone()),
        ..Default::default()
    };
    tracked(created, Kind::Network, async move {
        docker.create_network(request).await.map(|r| r.id)
    })
    .await
    .map_err(|e| Failure::new(format!("creating network {network}"), e))?;

    let mut started = Vec::with_capacity(ctx.spec.services.len());
    for svc in &ctx.spec.services {
        let id = start_one(ctx, created, svc, &network).await?;
        started.push(id);
    }
    let deadline = Instant::now() + ctx.config.service_ready_timeout;
    let checks = ctx
        .spec
        .services
        .iter()
        .zip(images)
        .zip(&started)
        .map(|((svc, image), id)| wait_ready(ctx, svc, image, id, &network, deadline));
    for result in futures::future::join_all(checks).await {
        result?;
    }
    Ok(network)
}

async fn start_one(
    ctx: &Ctx<'_>,
    created: &Shared,
    svc: &ServiceSpec,
    network: &str,
) -> Result<String, Failure> {
    let stage = || format!("starting service `{}` ({})", svc.name, svc.image);
    let mut labels = ctx.labels.clone();
    labels.insert(LABEL_SERVICE.to_owned(), svc.name.clone());
    let name = names::container_name(&ctx.req.task, &ctx.attempt, Some(&svc.name));
    let body = ContainerCreateBody {
        image: Some(svc.image.clone()),
        hostname: Some(svc.name.clone()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some(network.to_owned()),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_owned(),
                EndpointSettings {
                    aliases: Some(vec![svc.name.clone()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    let docker = ctx.docker.clone();
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let id = tracked(created, Kind::Container, async move {
        docker
            .create_container(Some(options), body)
            .await
            .map(|r| r.id)
    })
    .await
    .map_err(|e| Failure::new(stage(), e))?;
    ctx.docker
        .start_container(&id, None)
        .await
        .map_err(|e| Failure::engine(stage(), &e))?;
    Ok(id)
}

/// What readiness means for one service.
enum Probe {
    Health,
    Ports(Vec<u16>),
    Running,
}

fn probe_for(image: &ImageInspect) -> Probe {
    let config = image.config.as_ref();
    let has_health = config
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.as_ref())
        .and_then(|t| t.first())
        .is_some_and(|first| first != "NONE");
    if has_health {
        return Probe::Health;
    }
    let mut ports: Vec<u16> = config
        .and_then(|c| c.exposed_ports.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
            (proto == "tcp").then(|| port.parse().ok()).flatten()
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    if ports.is_empty() {
        Probe::Running
    } else {
        Probe::Ports(ports)
    }
}

async fn wait_ready(
    ctx: &Ctx<'_>,
    svc: &ServiceSpec,
    image: &ImageInspect,
    id: &str,
    network: &str,
    deadline: Instant,
) -> Result<(), Failure> {
    let stage = format!("starting service `{}` ({})", svc.name, svc.image);
    let probe = probe_for(image);
    let mut port_probe = PortProbe::Inside;
    let mut waiting_for = String::from("the container to run");
    loop {
        let info = ctx
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| Failure::engine(stage.clone(), &e))?;
        let state = info.state.unwrap_or_default();
        if state.running != Some(true) {
            let started = state
                .started_at
                .as_deref()
                .is_some_and(|s| !s.starts_with("0001"));
            if started {
                let code = state.exit_code.unwrap_or(-1);
                return Err(Failure::new(
                    stage,
                    format!(
                        "service `{}` (image {}) exited with code {code} before it was ready; its last output:\n{}",
                        svc.name,
                        svc.image,
                        last_output(ctx.docker, id).await
                    ),
                ));
            }
        } else {
            match &probe {
                Probe::Running => return Ok(()),
                Probe::Health => match state.health.and_then(|h| h.status) {
                    Some(HealthStatusEnum::HEALTHY) => return Ok(()),
                    Some(HealthStatusEnum::UNHEALTHY) => {
                        return Err(Failure::new(
                            stage,
                            format!(
                                "service `{}` (image {}) reported unhealthy; its last output:\n{}",
                                svc.name,
                                svc.image,
                                last_output(ctx.docker, id).await
                            ),
                        ));
                    }
                    _ => waiting_for = "its health check to pass".to_owned(),
                },
                Probe::Ports(ports) if port_probe == PortProbe::Inside => {
                    match listening_inside(ctx.docker, id, ports).await {
                        Ok(Inside::Listening) => return Ok(()),
                        Ok(Inside::NotYet) => {
                            waiting_for = format!("TCP port(s) {ports:?} to be listening");
                        }
                        Ok(Inside::Unsupported) => {
                            port_probe = PortProbe::FromHere;
                            continue;
                        }
                        Err(e) => return Err(Failure::engine(stage.clone(), &e)),
                    }
                }
                Probe::Ports(ports) => {
                    let ip = info
                        .network_settings
                        .and_then(|n| n.networks)
                        .and_then(|mut n| n.remove(network))
                        .and_then(|e| e.ip_address)
                        .and_then(|ip| ip.parse::<IpAddr>().ok());
                    match ip {
                        None => waiting_for = format!("an address on network {network}"),
                        Some(ip) => match closed_port(ip, ports).await {
                            None => return Ok(()),
                            Some(port) => {
                                waiting_for =
                                    format!("TCP port {port} to accept connections at {ip}")
                            }
                        },
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(
                stage,
                format!(
                    "service `{}` (image {}) was not ready within {}: still waiting for {waiting_for}; its last output:\n{}",
                    svc.name,
                    svc.image,
                    humantime::format_duration(ctx.config.service_ready_timeout),
                    last_output(ctx.docker, id).await
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The first port of `ports` that does not accept a TCP connection at `ip`, if any.
async fn closed_port(ip: IpAddr, ports: &[u16]) -> Option<u16> {
    for &port in ports {
        let connect = tokio::net::TcpStream::connect((ip, port));
        match tokio::time::timeout(CONNECT_LIMIT, connect).await {
            Ok(Ok(_stream)) => {}
            _ => return Some(port),
        }
    }
    None
}

fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}
