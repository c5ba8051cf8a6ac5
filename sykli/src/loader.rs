//! Running `sykli.go` and `sykli.ts` pipeline programs to get their task graph.
//!
//! A Go or TypeScript pipeline is a program that prints the graph as JSON when given `--emit`.
//! [`emit`] runs it and returns that JSON; errors name the file, the command and its stderr.
//!
//! Go programs are compiled once and cached under `<project>/.sykli/bin/`, keyed by a BLAKE3
//! hash of the pipeline sources (`sykli.go`, `go.mod`, `go.sum`, the Go files of local
//! `replace` directories) and `go version`, so a second load only runs the binary.
//! TypeScript programs run with the first runner found: the project's `node_modules/.bin/tsx`,
//! `tsx`, `bun`, `deno` on `PATH`, `node --experimental-strip-types` (Node 22.6 or later), and
//! finally `npx tsx`.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A pipeline program found in a project directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// `sykli.go`.
    Go(PathBuf),
    /// `sykli.ts`.
    TypeScript(PathBuf),
}

impl Program {
    /// The program file.
    pub fn file(&self) -> &Path {
        match self {
            Program::Go(p) | Program::TypeScript(p) => p,
        }
    }
}

/// Finds `sykli.go` or `sykli.ts` (in that order) in `dir`.
pub fn find(dir: &Path) -> Option<Program> {
    let go = dir.join("sykli.go");
    if go.is_file() {
        return Some(Program::Go(go));
    }
    let ts = dir.join("sykli.ts");
    ts.is_file().then_some(Program::TypeScript(ts))
}

/// Why a pipeline program did not produce a graph.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The toolchain the program needs is not installed.
    #[error("failed to run {file}: `{command}` is not available ({hint})")]
    ToolchainMissing {
        /// The program file.
        file: PathBuf,
        /// The command that could not start.
        command: String,
        /// How to get it.
        hint: &'static str,
    },
    /// The build or the program failed.
    #[error("failed to run {file}: `{command}` {status}{}", stderr_block(.stderr))]
    Failed {
        /// The program file.
        file: PathBuf,
        /// The command that failed.
        command: String,
        /// How it ended, e.g. "exited with status 1".
        status: String,
        /// Its stderr.
        stderr: String,
    },
    /// The program printed something that is not UTF-8.
    #[error("failed to run {file}: `{command}` printed output that is not UTF-8")]
    NotUtf8 {
        /// The program file.
        file: PathBuf,
        /// The command.
        command: String,
    },
    /// Reading sources or writing the binary cache failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn stderr_block(stderr: &str) -> String {
    let s = stderr.trim_end();
    if s.is_empty() {
        String::new()
    } else {
        format!(":\n{s}")
    }
}

/// Runs the program with `--emit` in its directory and returns the JSON it printed.
pub fn emit(program: &Program) -> Result<String, LoadError> {
    match program {
        Program::Go(file) => emit_go(file),
        Program::TypeScript(file) => emit_ts(file, &TsRunner::detect(dir_of(file))),
    }
}

fn dir_of(file: &Path) -> &Path {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A command line for messages: program and arguments separated by spaces.
struct Shown<'a>(&'a Command);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.get_program().to_string_lossy())?;
        for a in self.0.get_args() {
            write!(f, " {}", a.to_string_lossy())?;
        }
        Ok(())
    }
}

/// Runs `cmd`, mapping a missing executable and a failure to [`LoadError`].
fn run(file: &Path, cmd: &mut Command, hint: &'static str) -> Result<Output, LoadError> {
    let command = Shown(cmd).to_string();
    let out = cmd.output().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => LoadError::ToolchainMissing {
            file: file.to_path_buf(),
            command: command.clone(),
            hint,
        },
        _ => LoadError::Failed {
            file: file.to_path_buf(),
            command: command.clone(),
            status: format!("could not start: {e}"),
            stderr: String::new(),
        },
    })?;
    if !out.status.success() {
        let status = match out.status.code() {
            Some(c) => format!("exited with status {c}"),
            None => format!("was killed ({})", out.status),
        };
        return Err(LoadError::Failed {
            file: file.to_path_buf(),
            command,
            status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(out)
}

fn stdout_of(file: &Path, cmd: &Command, out: Output) -> Result<String, LoadError> {
    String::from_utf8(out.stdout).map_err(|_| LoadError::NotUtf8 {
        file: file.to_path_buf(),
        command: Shown(cmd).to_string(),
    })
}

const GO_HINT: &str = "install Go from https://go.dev/dl";

/// The cached binary for `file`, building it when the sources or the toolchain changed.
pub fn go_binary(file: &Path) -> Result<PathBuf, LoadError> {
    let dir = dir_of(file);
    let mut version = Command::new("go");
    version.arg("version").current_dir(dir);
    let version = run(file, &mut version, GO_HINT)?.stdout;

    let mut hasher = blake3::Hasher::new();
    hasher.update(b"sykli go pipeline v1\0");
    hasher.update(&version);
    for var in ["GOOS", "GOARCH", "GOFLAGS", "CGO_ENABLED"] {
        hasher.update(var.as_bytes());
        hasher.update(b"=");
        hasher.update(std::env::var_os(var).unwrap_or_default().as_encoded_bytes());
        hasher.update(b"\0");
    }
    for path in go_sources(file)? {
        let content = std::fs::read(&path).map_err(|source| LoadError::Io {
            action: "read",
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
    std::fs::create_dir_all(&bin_dir).map_err(|source| LoadError::Io {
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
        .arg(file.file_name().unwrap_or(file.as_os_str()))
        .current_dir(dir);
    if let Err(e) = run(file, &mut build, GO_HINT) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &bin).map_err(|source| LoadError::Io {
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
fn go_sources(file: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let dir = dir_of(file);
    let mut files = vec![file.to_path_buf()];
    for name in ["go.mod", "go.sum", "go.work", "go.work.sum"] {
        let p = dir.join(name);
        if p.is_file() {
            files.push(p);
        }
    }
    let go_mod = dir.join("go.mod");
    if let Ok(text) = std::fs::read_to_string(&go_mod) {
        for target in local_replacements(&text) {
            let target = dir.join(target);
            let Ok(entries) = std::fs::read_dir(&target) else {
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
    Ok(files)
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

fn emit_go(file: &Path) -> Result<String, LoadError> {
    let bin = go_binary(file)?;
    let mut cmd = Command::new(&bin);
    cmd.arg("--emit").current_dir(dir_of(file));
    let out = run(file, &mut cmd, GO_HINT)?;
    stdout_of(file, &cmd, out)
}

/// How a `sykli.ts` is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsRunner {
    /// The executable.
    pub program: OsString,
    /// Arguments before the file.
    pub args: Vec<OsString>,
}

const TS_HINT: &str =
    "install Node.js and run `npm install --save-dev tsx`, or install Bun or Deno";

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

/// Runs `file` with `runner` and `--emit` in its directory.
pub fn emit_ts(file: &Path, runner: &TsRunner) -> Result<String, LoadError> {
    let mut cmd = Command::new(&runner.program);
    cmd.args(&runner.args)
        .arg(file.file_name().unwrap_or(file.as_os_str()))
        .arg("--emit")
        .current_dir(dir_of(file));
    let out = run(file, &mut cmd, TS_HINT)?;
    stdout_of(file, &cmd, out)
}
