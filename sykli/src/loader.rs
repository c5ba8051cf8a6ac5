//! The pipeline loader: finds the SDK program or JSON file in a project directory and turns it
//! into a [`Graph`]. The one place a graph enters `sykli` from outside.
//!
//! A directory is searched for the files of [`LOADERS`], in order: `sykli.rs`, `sykli.go`,
//! `sykli.ts`, `sykli.json`. A path to a file picks its loader by file name (`*.json` is a
//! graph). To add an SDK, write a `fn(&Path) -> Result<Emitted, LoadError>` that runs the
//! program with `--emit` (see [`run_emitter`]) and put it in [`LOADERS`].
//!
//! - **Program output.** A program's stdout may hold text besides the graph (a `println!`
//!   before it, a log line after it): the graph is the last complete top-level JSON object
//!   ([`find_graph`]); the other lines are kept in [`Emitted::other_output`] and printed on
//!   stderr by [`load_project`], prefixed with the file name. When no object is found, the
//!   error shows what the program printed. Stdout is read up to
//!   [`Limits::max_document_bytes`]; a program printing more is stopped.
//! - **Limits.** A `sykli.json` larger than [`Limits::max_document_bytes`] is refused before it
//!   is read; [`Graph::from_json`] applies the text limits, validation the graph limits.
//! - **Go** programs are compiled once and cached under `<project>/.sykli/bin/`, keyed by a
//!   BLAKE3 hash of the pipeline sources (`sykli.go`, `go.mod`, `go.sum`, the Go files of local
//!   `replace` directories) and `go version`, so a second load only runs the binary.
//! - **TypeScript** programs run with the first runner found: the project's
//!   `node_modules/.bin/tsx`, `tsx`, `bun`, `deno` on `PATH`, `node
//!   --experimental-strip-types` (Node 22.6 or later), and finally `npx tsx`.
//! - **Rust** (`sykli.rs`): `cargo run` of the crate's bin built from that file.

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sykli_runtime::graph::{Graph, Limits};

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
        source: io::Error,
    },
    /// Writing the Go binary cache failed.
    #[error("failed to {action} {}", .path.display())]
    Write {
        /// What was being done: `create`, `write`.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file or a program's output is larger than [`Limits::max_document_bytes`].
    #[error(
        "failed to load the task graph from {origin}: it is larger than {limit} bytes, the limit for a graph document"
    )]
    TooLarge {
        /// The file, or `` `command` for file ``.
        origin: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The JSON is not a task graph.
    #[error("failed to parse the task graph from {origin}: {source}")]
    Parse {
        /// The file, or `` the output of `command` for file `` when a program printed it.
        origin: String,
        /// Line, column and reason.
        #[source]
        source: serde_json::Error,
    },
    /// The toolchain the program needs is not installed.
    #[error("failed to run `{command}` for {}: the program was not found ({hint})", .file.display())]
    ToolchainMissing {
        /// The pipeline file.
        file: PathBuf,
        /// The command that could not start.
        command: String,
        /// How to get it.
        hint: &'static str,
    },
    /// The program could not be started for another reason.
    #[error("failed to run `{command}` for {}: {source}", .file.display())]
    Spawn {
        /// The pipeline file.
        file: PathBuf,
        /// The command line.
        command: String,
        /// Why it did not start.
        #[source]
        source: io::Error,
    },
    /// The program (or its build) ran and failed.
    #[error("`{command}` for {} failed ({status}){}", .file.display(), stderr_block(.stderr))]
    ProgramFailed {
        /// The pipeline file.
        file: PathBuf,
        /// The command line.
        command: String,
        /// Exit status, e.g. `exit status: 101`.
        status: String,
        /// Its standard error (the last [`STDERR_KEPT`] bytes).
        stderr: String,
    },
    /// The program succeeded but printed no JSON object.
    #[error("`{command}` for {} printed no task graph (a JSON object){}", .file.display(), printed_block(.stdout, .stderr))]
    NoGraph {
        /// The pipeline file.
        file: PathBuf,
        /// The command line.
        command: String,
        /// What it printed on stdout.
        stdout: String,
        /// What it printed on stderr (the last [`STDERR_KEPT`] bytes).
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
}

/// How much of a program's stderr is kept for an error message: its last 64 KiB.
pub const STDERR_KEPT: usize = 64 << 10;

/// How much of a program's output a [`LoadError::NoGraph`] message shows: lines and bytes.
const SHOWN_LINES: usize = 20;
const SHOWN_BYTES: usize = 2000;

fn stderr_block(stderr: &str) -> String {
    let s = stderr.trim_end();
    if s.is_empty() {
        " with no output on stderr".into()
    } else {
        format!(":\n{s}")
    }
}

fn printed_block(stdout: &str, stderr: &str) -> String {
    let mut out = String::new();
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        if text.trim().is_empty() {
            out.push_str(&format!("; nothing on {name}"));
        } else {
            out.push_str(&format!(";\nit printed on {name}:\n{}", excerpt(text)));
        }
    }
    out
}

/// The first [`SHOWN_LINES`] lines (at most [`SHOWN_BYTES`] bytes) of `text`, and how much
/// was left out.
fn excerpt(text: &str) -> String {
    let text = text.trim_end();
    let mut shown = String::new();
    let mut lines = 0;
    for line in text.lines() {
        if lines == SHOWN_LINES || shown.len() + line.len() > SHOWN_BYTES {
            break;
        }
        shown.push_str(line);
        shown.push('\n');
        lines += 1;
    }
    if lines == 0 {
        // One very long first line: cut it on a character boundary.
        let mut cut = SHOWN_BYTES.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.push_str(&text[..cut]);
        shown.push('\n');
    }
    let left = text.len().saturating_sub(shown.len());
    if left > 0 {
        shown.push_str(&format!("... ({left} more bytes)\n"));
    }
    shown.trim_end().to_string()
}

fn looked_for() -> String {
    LOADERS
        .iter()
        .map(|l| l.file)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What loading a pipeline file gave: the graph and what else its program printed.
#[derive(Debug, Clone)]
pub struct Emitted {
    /// The task graph, as emitted (not validated).
    pub graph: Graph,
    /// The graph's JSON text, as printed (or the file's content).
    pub json: String,
    /// The program's stdout lines outside the graph, without blank lines at either end.
    pub other_output: Vec<String>,
}

/// One kind of pipeline file and how to turn it into a graph.
#[derive(Debug, Clone, Copy)]
pub struct Loader {
    /// The file name looked for in a project directory.
    pub file: &'static str,
    /// Loads the graph from that file (given as a path inside the project).
    pub load: fn(&Path) -> Result<Emitted, LoadError>,
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
    /// Lines the pipeline program printed besides the graph (already shown on stderr).
    pub program_output: Vec<String>,
}

/// Loads the pipeline at `path`: a project directory, or a pipeline file.
pub fn load_pipeline(path: &Path) -> Result<Graph, LoadError> {
    load_project(path).map(|l| l.graph)
}

/// Like [`load_pipeline`], also returning the file used and the project directory. Lines a
/// program printed besides the graph are written to stderr as `<file>: <line>`.
pub fn load_project(path: &Path) -> Result<Loaded, LoadError> {
    let (file, loader) = find_pipeline(path)?;
    let emitted = (loader.load)(&file)?;
    let name = file
        .file_name()
        .unwrap_or(file.as_os_str())
        .to_string_lossy();
    for line in &emitted.other_output {
        eprintln!("{name}: {line}");
    }
    Ok(Loaded {
        graph: emitted.graph,
        project_root: dir_of(&file),
        file,
        program_output: emitted.other_output,
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

/// Reads a JSON graph file, refusing one larger than [`Limits::max_document_bytes`] before
/// reading it.
pub fn load_json(file: &Path) -> Result<Emitted, LoadError> {
    let limit = Limits::DEFAULT.max_document_bytes;
    let read_err = |source| LoadError::Read {
        path: file.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(file).map_err(read_err)?;
    let too_large = || LoadError::TooLarge {
        origin: file.display().to_string(),
        limit,
    };
    if f.metadata().map_err(read_err)?.len() > limit as u64 {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    f.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() > limit {
        return Err(too_large());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        read_err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not UTF-8: {e}"),
        ))
    })?;
    let graph = Graph::from_json(&text).map_err(|source| LoadError::Parse {
        origin: file.display().to_string(),
        source,
    })?;
    Ok(Emitted {
        graph,
        json: text,
        other_output: Vec::new(),
    })
}

/// Where the graph is in a program's output: the byte range of the last complete top-level
/// JSON object that starts a line (after optional blanks), or `None`.
///
/// Objects are searched for from the first line on; a line starting with `{` that does not
/// begin a complete JSON value is text, and the search goes on at the next line.
pub fn find_graph(output: &str) -> Option<std::ops::Range<usize>> {
    let bytes = output.as_bytes();
    let mut found = None;
    let mut line = 0;
    while line < bytes.len() {
        let start = line
            + bytes[line..]
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t' | b'\r'))
                .count();
        let next_line = |from: usize| {
            bytes[from..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |p| from + p + 1)
        };
        if bytes.get(start) == Some(&b'{') {
            let mut values = serde_json::Deserializer::from_str(&output[start..])
                .into_iter::<serde::de::IgnoredAny>();
            if let Some(Ok(_)) = values.next() {
                let end = start + values.byte_offset();
                found = Some(start..end);
                line = next_line(end);
                continue;
            }
        }
        line = next_line(start);
    }
    found
}

/// Runs `command` in `dir` and reads the graph from its stdout (see [`find_graph`]). The helper
/// every SDK loader shares: errors name `file` and the command, and carry the program's stderr.
pub fn run_emitter(
    file: &Path,
    dir: &Path,
    command: Command,
    hint: &'static str,
) -> Result<Emitted, LoadError> {
    let out = run_for(file, dir, command, hint)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(range) = find_graph(&text) else {
        return Err(LoadError::NoGraph {
            file: file.to_path_buf(),
            command: out.shown,
            stdout: text.into_owned(),
            stderr: out.stderr,
        });
    };
    let before = &text[..range.start];
    let json = &text[range.clone()];
    let origin = if before.trim().is_empty() {
        format!("the output of `{}` for {}", out.shown, file.display())
    } else {
        format!(
            "the output of `{}` for {} (the graph starts at its line {}; positions below count from there)",
            out.shown,
            file.display(),
            before.matches('\n').count() + 1
        )
    };
    let graph = Graph::from_json(json).map_err(|source| LoadError::Parse { origin, source })?;
    // The rest of the graph's last line, and the blanks before it on its first, are not output.
    let after = text[range.end..].trim_start_matches([' ', '\t', '\r']);
    let after = after.strip_prefix('\n').unwrap_or(after);
    let mut other_output: Vec<String> = before
        .trim_end_matches([' ', '\t'])
        .lines()
        .chain(after.lines())
        .map(|l| l.trim_end().to_string())
        .collect();
    while other_output.last().is_some_and(|l| l.is_empty()) {
        other_output.pop();
    }
    let blank_head = other_output.iter().take_while(|l| l.is_empty()).count();
    other_output.drain(..blank_head);
    Ok(Emitted {
        graph,
        json: json.to_string(),
        other_output,
    })
}

/// What a program printed, and how it was shown in messages.
struct Ran {
    shown: String,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `command` in `dir` on behalf of the pipeline `file`, stdin closed. Stdout is read up to
/// [`Limits::max_document_bytes`] (the program is killed past it), stderr keeps its last
/// [`STDERR_KEPT`] bytes. A missing program is [`LoadError::ToolchainMissing`] with `hint`;
/// a non-zero exit is [`LoadError::ProgramFailed`] with the stderr.
fn run_for(
    file: &Path,
    dir: &Path,
    mut command: Command,
    hint: &'static str,
) -> Result<Ran, LoadError> {
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = show_command(&command);
    let mut child = command.spawn().map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => LoadError::ToolchainMissing {
            file: file.to_path_buf(),
            command: shown.clone(),
            hint,
        },
        _ => LoadError::Spawn {
            file: file.to_path_buf(),
            command: shown.clone(),
            source,
        },
    })?;
    let spawn_err = |source| LoadError::Spawn {
        file: file.to_path_buf(),
        command: shown.clone(),
        source,
    };
    let stderr_pipe = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || read_tail(stderr_pipe, STDERR_KEPT));
    let limit = Limits::DEFAULT.max_document_bytes;
    let mut stdout = Vec::new();
    let read = match child.stdout.take() {
        Some(pipe) => pipe.take(limit as u64 + 1).read_to_end(&mut stdout),
        None => Ok(0),
    };
    if stdout.len() > limit {
        // Stop the program: nothing more of its output will be read.
        let _ = child.kill();
        let _ = child.wait();
        let _ = stderr_reader.join();
        return Err(LoadError::TooLarge {
            origin: format!("the output of `{shown}` for {}", file.display()),
            limit,
        });
    }
    read.map_err(spawn_err)?;
    let status = child.wait().map_err(spawn_err)?;
    let stderr = stderr_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(LoadError::ProgramFailed {
            file: file.to_path_buf(),
            command: shown,
            status: status.to_string(),
            stderr,
        });
    }
    Ok(Ran {
        shown,
        stdout,
        stderr,
    })
}

/// Reads `pipe` to its end, keeping the last `keep` bytes, as text.
fn read_tail(pipe: Option<impl Read>, keep: usize) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    let mut cut = false;
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * keep {
                    kept.drain(..kept.len() - keep);
                    cut = true;
                }
            }
        }
    }
    if kept.len() > keep {
        kept.drain(..kept.len() - keep);
        cut = true;
    }
    let text = String::from_utf8_lossy(&kept).into_owned();
    if cut {
        format!("[... earlier output cut]\n{text}")
    } else {
        text
    }
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

const RUST_HINT: &str = "install Rust from https://rustup.rs";
const GO_HINT: &str = "install Go from https://go.dev/dl";
const TS_HINT: &str =
    "install Node.js and run `npm install --save-dev tsx`, or install Bun or Deno";

/// `sykli.rs`: `cargo run --quiet --bin <bin> -- --emit`, where `<bin>` is the `[[bin]]` whose
/// path is this file, else the bin named `ci`. Targets are read with `cargo metadata`.
pub fn load_rust(file: &Path) -> Result<Emitted, LoadError> {
    let dir = dir_of(file);
    let manifest = dir.join("Cargo.toml");
    let bin = rust_bin_for(file, &dir, &manifest)?;
    let mut cmd = Command::new(cargo());
    cmd.args(["run", "--quiet", "--bin", &bin, "--", "--emit"]);
    run_emitter(file, &dir, cmd, RUST_HINT)
}

fn cargo() -> OsString {
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
    let out = run_for(file, dir, cmd, RUST_HINT)?;
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|source| LoadError::Parse {
            origin: format!("the output of `{}` for {}", out.shown, file.display()),
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

/// `sykli.go`: built once with `go build` into `.sykli/bin/` (see [`go_binary`]), then the
/// binary runs with `--emit`.
pub fn load_go(file: &Path) -> Result<Emitted, LoadError> {
    let bin = go_binary(file)?;
    let mut cmd = Command::new(bin);
    cmd.arg("--emit");
    run_emitter(file, &dir_of(file), cmd, GO_HINT)
}

/// The cached binary for `file`, building it when the sources or the toolchain changed.
pub fn go_binary(file: &Path) -> Result<PathBuf, LoadError> {
    let dir = dir_of(file);
    let mut version = Command::new("go");
    version.arg("version");
    let version = run_for(file, &dir, version, GO_HINT)?.stdout;

    let mut hasher = blake3::Hasher::new();
    hasher.update(b"sykli go pipeline v1\0");
    hasher.update(&version);
    for var in ["GOOS", "GOARCH", "GOFLAGS", "CGO_ENABLED"] {
        hasher.update(var.as_bytes());
        hasher.update(b"=");
        hasher.update(std::env::var_os(var).unwrap_or_default().as_encoded_bytes());
        hasher.update(b"\0");
    }
    for path in go_sources(file) {
        let content = std::fs::read(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        hasher.update(path.as_os_str().as_encoded_bytes());
        hasher.update(&(content.len() as u64).to_le_bytes());
        hasher.update(&content);
    }
    let key = hasher.finalize().to_hex();

    let bin_dir = dir.join(".sykli").join("bin");
    let bin = bin_dir.join(format!("go-{}", &key[..32]));
    if bin.is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&bin_dir).map_err(|source| LoadError::Write {
        action: "create",
        path: bin_dir.clone(),
        source,
    })?;
    let tmp = bin_dir.join(format!(".go-{}.{}.tmp", &key[..32], std::process::id()));
    let mut build = Command::new("go");
    build
        .arg("build")
        .arg("-o")
        .arg(&tmp)
        .arg(file.file_name().unwrap_or(file.as_os_str()));
    if let Err(e) = run_for(file, &dir, build, GO_HINT) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &bin).map_err(|source| LoadError::Write {
        action: "write",
        path: bin.clone(),
        source,
    })?;
    // Older builds of this pipeline are dead weight.
    if let Ok(entries) = std::fs::read_dir(&bin_dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("go-") && e.path() != bin {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(bin)
}

/// The files a Go pipeline's build depends on besides the module cache: the program, the
/// module files, and the `.go` and `go.mod` files of directories named by local `replace`
/// directives (non-recursive). Sorted for a stable hash.
fn go_sources(file: &Path) -> Vec<PathBuf> {
    let dir = dir_of(file);
    let mut files = vec![file.to_path_buf()];
    for name in ["go.mod", "go.sum", "go.work", "go.work.sum"] {
        let p = dir.join(name);
        if p.is_file() {
            files.push(p);
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("go.mod")) {
        for target in local_replacements(&text) {
            let Ok(entries) = std::fs::read_dir(dir.join(target)) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let name = e.file_name();
                let name = name.to_string_lossy();
                if p.is_file() && (name.ends_with(".go") || name == "go.mod") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    files
}

/// Local paths on the right of `replace` directives (`=> ./x`, `=> ../x`, `=> /x`).
fn local_replacements(go_mod: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in go_mod.lines() {
        let Some((_, right)) = line.split_once("=>") else {
            continue;
        };
        let Some(target) = right.split_whitespace().next() else {
            continue;
        };
        if target.starts_with("./") || target.starts_with("../") || target.starts_with('/') {
            out.push(target.to_string());
        }
    }
    out
}

/// `sykli.ts`: run with the first runner [`TsRunner::detect`] finds.
pub fn load_ts(file: &Path) -> Result<Emitted, LoadError> {
    load_ts_with(file, &TsRunner::detect(&dir_of(file)))
}

/// `sykli.ts` run with `runner` and `--emit` in its directory.
pub fn load_ts_with(file: &Path, runner: &TsRunner) -> Result<Emitted, LoadError> {
    let mut cmd = Command::new(&runner.program);
    cmd.args(&runner.args)
        .arg(file.file_name().unwrap_or(file.as_os_str()))
        .arg("--emit");
    run_emitter(file, &dir_of(file), cmd, TS_HINT)
}

/// How a `sykli.ts` is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsRunner {
    /// The executable.
    pub program: OsString,
    /// Arguments before the file.
    pub args: Vec<OsString>,
}

impl TsRunner {
    /// The first available runner for a project in `dir`, searching `PATH`.
    pub fn detect(dir: &Path) -> TsRunner {
        TsRunner::detect_in(dir, std::env::var_os("PATH").as_deref())
    }

    /// [`TsRunner::detect`] with an explicit `PATH` value.
    pub fn detect_in(dir: &Path, path: Option<&std::ffi::OsStr>) -> TsRunner {
        let runner = |program: OsString, args: &[&str]| TsRunner {
            program,
            args: args.iter().map(OsString::from).collect(),
        };
        let local = dir.join("node_modules").join(".bin").join("tsx");
        if local.is_file() {
            return runner(local.into_os_string(), &[]);
        }
        let on_path = |name: &str| -> Option<PathBuf> {
            std::env::split_paths(path?)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        };
        if let Some(p) = on_path("tsx") {
            return runner(p.into_os_string(), &[]);
        }
        if let Some(p) = on_path("bun") {
            return runner(p.into_os_string(), &["run"]);
        }
        if let Some(p) = on_path("deno") {
            return runner(p.into_os_string(), &["run", "--allow-all"]);
        }
        if let Some(node) = on_path("node")
            && node_strips_types(&node)
        {
            return runner(
                node.into_os_string(),
                &["--experimental-strip-types", "--no-warnings"],
            );
        }
        runner("npx".into(), &["--yes", "tsx"])
    }
}

/// Whether `node` is 22.6 or later (type stripping available).
fn node_strips_types(node: &Path) -> bool {
    let Ok(out) = Command::new(node).arg("--version").output() else {
        return false;
    };
    let v = String::from_utf8_lossy(&out.stdout);
    let mut parts = v.trim().trim_start_matches('v').split('.');
    let major: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    major > 22 || (major == 22 && minor >= 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_is_the_last_complete_top_level_object() {
        let g = "{\n  \"version\": \"1\",\n  \"tasks\": [\n    {\"name\": \"a\"}\n  ]\n}";
        assert_eq!(find_graph(g), Some(0..g.len()));
        let noisy = format!("building {{x}}\n{{ not json\n{g}\ndone {{\n");
        let r = find_graph(&noisy).unwrap();
        assert_eq!(&noisy[r], g);
        // Two objects: the last one wins; an indented inner object is not top level.
        let two = format!("{{\"log\": 1}}\n  {g}\n");
        assert_eq!(&two[find_graph(&two).unwrap()], g);
        assert_eq!(find_graph("no graph here\n{\"a\": [1,\n"), None);
        assert_eq!(find_graph(""), None);
        // A complete object followed by text on the same line still counts.
        assert_eq!(find_graph("{\"a\": 1} trailing"), Some(0..8));
    }

    #[test]
    fn excerpts_are_cut_by_lines_and_bytes() {
        let many: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let e = excerpt(&many);
        assert!(e.starts_with("line 0\n"), "{e}");
        assert!(e.contains("line 19\n... ("), "{e}");
        assert!(!e.contains("line 20"), "{e}");
        let long = "é".repeat(5000);
        let e = excerpt(&long);
        assert!(e.ends_with("more bytes)"), "{e}");
        assert!(e.len() < SHOWN_BYTES + 40);
    }
}
