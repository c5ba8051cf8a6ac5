//! Finding and loading the pipeline: the SDK program or JSON file in a project directory,
//! turned into a [`Graph`].
//!
//! A directory is searched for the files of [`LOADERS`], in order: `sykli.rs`, `sykli.go`,
//! `sykli.ts`, `sykli.json`. A path to a file picks its loader by file name (`*.json` is a
//! graph). To add an SDK, write a `fn(&Path) -> Result<Graph, LoadError>` that runs the
//! program with `--emit` (see [`run_emitter`]) and put it in [`LOADERS`].

use std::path::{Path, PathBuf};
use std::process::Command;

use sykli_runtime::graph::Graph;

/// Why no graph could be loaded. Every variant names the file; program failures also name
/// the command and carry its stderr.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Nothing to load in the directory.
    #[error("no pipeline found in {}: looked for {}", .dir.display(), looked_for())]
    NotFound {
        /// The directory searched.
        dir: PathBuf,
    },
    /// The path does not exist.
    #[error("failed to find {}: no such file or directory", .path.display())]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// A file was given whose kind is unknown.
    #[error("failed to load {}: not a pipeline file (expected {} or a .json graph)", .path.display(), looked_for())]
    UnknownFile {
        /// The file.
        path: PathBuf,
    },
    /// Reading a file failed.
    #[error("failed to read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The JSON is not a task graph.
    #[error("failed to parse the task graph from {origin}: {source}")]
    Parse {
        /// The file, or `` `command` for file `` when a program printed it.
        origin: String,
        /// Line, column and reason.
        #[source]
        source: serde_json::Error,
    },
    /// The program could not be started (toolchain missing?).
    #[error("failed to run `{command}` for {}: {source}", .file.display())]
    Spawn {
        /// The pipeline file.
        file: PathBuf,
        /// The command line.
        command: String,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },
    /// The program ran and failed.
    #[error("`{command}` for {} failed ({status}){}", .file.display(), stderr_block(.stderr))]
    ProgramFailed {
        /// The pipeline file.
        file: PathBuf,
        /// The command line.
        command: String,
        /// Exit status, e.g. `exit status: 101`.
        status: String,
        /// Its standard error.
        stderr: String,
    },
    /// `sykli.rs` exists but no Cargo binary target is built from it.
    #[error(
        "failed to find a binary for {}: add a [[bin]] with path = \"sykli.rs\" (or a bin named \"ci\") to {}",
        .file.display(),
        .manifest.display()
    )]
    NoBinary {
        /// The pipeline file.
        file: PathBuf,
        /// The Cargo manifest searched.
        manifest: PathBuf,
    },
    /// The SDK of this file is not supported by this build.
    #[error("failed to load {}: {sdk} pipelines are not supported by this build of sykli yet", .file.display())]
    Unsupported {
        /// The pipeline file.
        file: PathBuf,
        /// `Go`, `TypeScript`, ...
        sdk: &'static str,
    },
}

fn stderr_block(stderr: &str) -> String {
    let s = stderr.trim_end();
    if s.is_empty() {
        " with no output on stderr".into()
    } else {
        format!(":\n{s}")
    }
}

fn looked_for() -> String {
    LOADERS
        .iter()
        .map(|l| l.file)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One kind of pipeline file and how to turn it into a graph.
#[derive(Debug, Clone, Copy)]
pub struct Loader {
    /// The file name looked for in a project directory.
    pub file: &'static str,
    /// Loads the graph from that file (given as a path inside the project).
    pub load: fn(&Path) -> Result<Graph, LoadError>,
}

/// The loaders, in search order.
pub const LOADERS: &[Loader] = &[
    Loader {
        file: "sykli.rs",
        load: load_rust,
    },
    Loader {
        file: "sykli.go",
        load: load_go,
    },
    Loader {
        file: "sykli.ts",
        load: load_ts,
    },
    Loader {
        file: "sykli.json",
        load: load_json,
    },
];

/// A loaded pipeline and the project it belongs to.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The task graph, as emitted (not validated).
    pub graph: Graph,
    /// The pipeline file the graph came from.
    pub file: PathBuf,
    /// The project directory: relative paths of tasks resolve against it.
    pub project_root: PathBuf,
}

/// Loads the pipeline at `path`: a project directory, or a pipeline file.
pub fn load_pipeline(path: &Path) -> Result<Graph, LoadError> {
    load_project(path).map(|l| l.graph)
}

/// Like [`load_pipeline`], also returning the file used and the project directory.
pub fn load_project(path: &Path) -> Result<Loaded, LoadError> {
    let (file, loader) = find_pipeline(path)?;
    let graph = (loader.load)(&file)?;
    let project_root = file
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Loaded {
        graph,
        file,
        project_root,
    })
}

/// The pipeline file at `path` (a directory is searched) and its loader.
pub fn find_pipeline(path: &Path) -> Result<(PathBuf, &'static Loader), LoadError> {
    if path.is_dir() {
        return LOADERS
            .iter()
            .map(|l| (path.join(l.file), l))
            .find(|(f, _)| f.is_file())
            .ok_or_else(|| LoadError::NotFound {
                dir: path.to_path_buf(),
            });
    }
    if !path.exists() {
        return Err(LoadError::Missing {
            path: path.to_path_buf(),
        });
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let loader = LOADERS
        .iter()
        .find(|l| l.file == name)
        .or_else(|| {
            name.ends_with(".json")
                .then(|| LOADERS.iter().find(|l| l.file == "sykli.json"))
                .flatten()
        })
        .ok_or_else(|| LoadError::UnknownFile {
            path: path.to_path_buf(),
        })?;
    Ok((path.to_path_buf(), loader))
}

/// Reads a JSON graph file.
pub fn load_json(file: &Path) -> Result<Graph, LoadError> {
    let text = std::fs::read_to_string(file).map_err(|source| LoadError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    Graph::from_json(&text).map_err(|source| LoadError::Parse {
        origin: file.display().to_string(),
        source,
    })
}

/// Runs `command` in `dir` and parses its stdout as the graph. The helper every SDK loader
/// shares: errors name `file` and the command, and carry the program's stderr.
pub fn run_emitter(file: &Path, dir: &Path, command: Command) -> Result<Graph, LoadError> {
    let (shown, stdout) = run_for(file, dir, command)?;
    let text = String::from_utf8_lossy(&stdout);
    Graph::from_json(&text).map_err(|source| LoadError::Parse {
        origin: format!("the output of `{shown}` for {}", file.display()),
        source,
    })
}

/// Runs `command` in `dir` on behalf of the pipeline `file`; returns the command as shown in
/// messages and its stdout. Failing to start or a non-zero exit is an error naming `file` and
/// the command, with the program's stderr.
fn run_for(file: &Path, dir: &Path, mut command: Command) -> Result<(String, Vec<u8>), LoadError> {
    command.current_dir(dir);
    let shown = show_command(&command);
    let out = command.output().map_err(|source| LoadError::Spawn {
        file: file.to_path_buf(),
        command: shown.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(LoadError::ProgramFailed {
            file: file.to_path_buf(),
            command: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok((shown, out.stdout))
}

fn show_command(c: &Command) -> String {
    std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn dir_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `sykli.rs`: `cargo run --quiet --bin <bin> -- --emit`, where `<bin>` is the `[[bin]]` whose
/// path is this file, else the bin named `ci`. Targets are read with `cargo metadata`.
pub fn load_rust(file: &Path) -> Result<Graph, LoadError> {
    let dir = dir_of(file);
    let manifest = dir.join("Cargo.toml");
    let bin = rust_bin_for(file, &dir, &manifest)?;
    let mut cmd = Command::new(cargo());
    cmd.args(["run", "--quiet", "--bin", &bin, "--", "--emit"]);
    run_emitter(file, &dir, cmd)
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn rust_bin_for(file: &Path, dir: &Path, manifest: &Path) -> Result<String, LoadError> {
    if !manifest.is_file() {
        return Err(LoadError::NoBinary {
            file: file.to_path_buf(),
            manifest: manifest.to_path_buf(),
        });
    }
    let mut cmd = Command::new(cargo());
    cmd.args([
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
        "--offline",
    ]);
    let (shown, stdout) = run_for(file, dir, cmd)?;
    let meta: serde_json::Value =
        serde_json::from_slice(&stdout).map_err(|source| LoadError::Parse {
            origin: format!("the output of `{shown}` for {}", file.display()),
            source,
        })?;
    let want = std::fs::canonicalize(file).map_err(|source| LoadError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let mut by_path = None;
    let mut ci = None;
    let packages = meta["packages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for target in packages
        .iter()
        .flat_map(|p| p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]))
    {
        let is_bin = target["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "bin"));
        let (Some(name), Some(src)) = (target["name"].as_str(), target["src_path"].as_str()) else {
            continue;
        };
        if !is_bin {
            continue;
        }
        if std::fs::canonicalize(src).is_ok_and(|p| p == want) {
            by_path = Some(name.to_string());
        } else if name == "ci" {
            ci = Some(name.to_string());
        }
    }
    by_path.or(ci).ok_or_else(|| LoadError::NoBinary {
        file: file.to_path_buf(),
        manifest: manifest.to_path_buf(),
    })
}

/// `sykli.go`: built once with `go build` into `.sykli/bin/` (keyed by a BLAKE3 hash of the
/// sources and `go version`, see [`crate::loader`]), then the binary runs with `--emit`.
pub fn load_go(file: &Path) -> Result<Graph, LoadError> {
    let bin = crate::loader::go_binary(file).map_err(|e| from_sdk_loader(file, e))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--emit");
    run_emitter(file, &dir_of(file), cmd)
}

/// `sykli.ts`: run with the project's tsx, or tsx, bun, deno, `node
/// --experimental-strip-types` (Node 22.6+) or `npx tsx`, whichever is found first.
pub fn load_ts(file: &Path) -> Result<Graph, LoadError> {
    let dir = dir_of(file);
    let runner = crate::loader::TsRunner::detect(&dir);
    let mut cmd = Command::new(&runner.program);
    cmd.args(&runner.args)
        .arg(file.file_name().unwrap_or(file.as_os_str()))
        .arg("--emit");
    run_emitter(file, &dir, cmd)
}

fn from_sdk_loader(file: &Path, e: crate::loader::LoadError) -> LoadError {
    use crate::loader::LoadError as L;
    match e {
        L::ToolchainMissing { command, hint, .. } => LoadError::Spawn {
            file: file.to_path_buf(),
            command,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, hint),
        },
        L::Failed {
            command,
            status,
            stderr,
            ..
        } => LoadError::ProgramFailed {
            file: file.to_path_buf(),
            command,
            status,
            stderr,
        },
        L::NotUtf8 { command, .. } => LoadError::ProgramFailed {
            file: file.to_path_buf(),
            command,
            status: "printed output that is not UTF-8".into(),
            stderr: String::new(),
        },
        L::Io { path, source, .. } => LoadError::Read { path, source },
    }
}
