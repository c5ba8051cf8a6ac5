//! `sykli clean`: removes what interrupted runs left behind.

use std::process::ExitCode;

use super::CleanArgs;

/// Runs `sykli clean`.
pub(crate) fn run(args: &CleanArgs) -> ExitCode {
    if !args.containers {
        eprintln!("sykli: nothing to clean: pass --containers");
        return ExitCode::from(2);
    }
    match containers(args.run.as_deref()) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("sykli: {err:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(feature = "docker")]
fn containers(run_id: Option<&str>) -> anyhow::Result<String> {
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
    let scope = match run_id {
        Some(run) => format!(" of run {run}"),
        None => String::new(),
    };
    Ok(format!(
        "removed {} container{} and {} network{}{scope} (engine {})",
        report.containers,
        if report.containers == 1 { "" } else { "s" },
        report.networks,
        if report.networks == 1 { "" } else { "s" },
        docker.host()
    ))
}

#[cfg(not(feature = "docker"))]
fn containers(_run_id: Option<&str>) -> anyhow::Result<String> {
    anyhow::bail!("this sykli was built without the `docker` feature; --containers is unavailable")
}
