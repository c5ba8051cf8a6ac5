//! `sykli clean`: removes what interrupted runs left behind.

use std::process::ExitCode;

use serde::Serialize;

use super::error::CliError;
use super::{CleanArgs, print_out};
use crate::report::{Envelope, to_data};

/// What `sykli clean --containers` removed (`data` of its `--json` envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cleaned {
    /// Containers removed.
    pub containers: usize,
    /// Networks removed.
    pub networks: usize,
    /// The run whose leftovers were removed; null for every run.
    pub run_id: Option<String>,
    /// The container engine asked (`DOCKER_HOST` or the default socket).
    pub engine: String,
}

/// Runs `sykli clean`: exit 0, 2 without `--containers` (`usage`), 1 when the engine could not
/// be reached or refused (`clean_failed`).
pub(crate) fn run(args: &CleanArgs, json: bool) -> ExitCode {
    if !args.containers {
        return CliError::usage(
            "usage",
            anyhow::anyhow!("nothing to clean: pass --containers"),
        )
        .report(json);
    }
    let cleaned = match containers(args.run.as_deref()) {
        Ok(c) => c,
        Err(e) => return CliError::failed("clean_failed", e).report(json),
    };
    if json {
        print_out(&Envelope::success(to_data(&cleaned)).to_line());
    } else {
        let scope = match &cleaned.run_id {
            Some(run) => format!(" of run {run}"),
            None => String::new(),
        };
        print_out(&format!(
            "removed {} container{} and {} network{}{scope} (engine {})\n",
            cleaned.containers,
            if cleaned.containers == 1 { "" } else { "s" },
            cleaned.networks,
            if cleaned.networks == 1 { "" } else { "s" },
            cleaned.engine
        ));
    }
    ExitCode::SUCCESS
}

#[cfg(feature = "docker")]
fn containers(run_id: Option<&str>) -> anyhow::Result<Cleaned> {
    use anyhow::Context;
    use sykli_runtime::exec::container::DockerExecutor;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let docker = DockerExecutor::connect()?;
    let report = runtime
        .block_on(docker.cleanup_leftovers(run_id))
        .context("failed to clean up containers")?;
    Ok(Cleaned {
        containers: report.containers,
        networks: report.networks,
        run_id: run_id.map(str::to_owned),
        engine: docker.host().to_string(),
    })
}

#[cfg(not(feature = "docker"))]
fn containers(_run_id: Option<&str>) -> anyhow::Result<Cleaned> {
    anyhow::bail!("this sykli was built without the `docker` feature; --containers is unavailable")
}
