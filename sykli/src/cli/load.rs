//! Finding and loading the pipeline. (Stand-in reading `sykli.json` until the SDK loader
//! lands: same signature.)

use std::path::{Path, PathBuf};

use sykli_runtime::graph::Graph;

use super::error::CliError;
use super::run::project_root_of;

/// A loaded pipeline: the graph and the project it belongs to.
#[derive(Debug)]
pub struct Loaded {
    /// The task graph.
    pub graph: Graph,
    /// The project directory (relative paths of tasks resolve against it).
    pub project_root: PathBuf,
}

/// Loads the pipeline at `path`: a directory holding `sykli.json`, or a graph file.
pub fn load(path: &Path) -> Result<Loaded, CliError> {
    let file = if path.is_dir() {
        path.join("sykli.json")
    } else {
        path.to_path_buf()
    };
    if !file.is_file() {
        return Err(CliError::usage(
            "no_pipeline",
            anyhow::anyhow!("no pipeline found: {} does not exist", file.display()),
        ));
    }
    let text = std::fs::read_to_string(&file).map_err(|e| {
        CliError::usage(
            "no_pipeline",
            anyhow::Error::new(e).context(format!("failed to read {}", file.display())),
        )
    })?;
    let graph = Graph::from_json(&text).map_err(|e| {
        CliError::usage(
            "invalid_pipeline",
            anyhow::Error::new(e).context(format!("failed to parse {}", file.display())),
        )
    })?;
    Ok(Loaded {
        graph,
        project_root: project_root_of(path),
    })
}
