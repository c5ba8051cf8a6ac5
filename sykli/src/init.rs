//! `sykli init`: scaffolds a starter pipeline that runs as it is.
//!
//! The SDKs are not published to a registry yet, so a starter can point at a local checkout:
//! `SYKLI_GO_SDK` (the `sdk-go` directory) adds a `replace` directive to a new `go.mod`,
//! `SYKLI_TS_SDK` (the `sdk-ts` directory) makes `sykli.ts` import its sources, and
//! `SYKLI_RUST_SDK` (the `sykli` crate directory) becomes a path dependency.

use std::io;
use std::path::{Path, PathBuf};

/// The language of the starter pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// `sykli.rs`, a Cargo binary.
    Rust,
    /// `sykli.go`, run with `go run sykli.go --emit`.
    Go,
    /// `sykli.ts`, run with tsx, Bun, Deno or Node's type stripping.
    TypeScript,
}

/// Where the SDK of each language comes from (local checkouts until they are published).
#[derive(Debug, Clone, Default)]
pub struct SdkSources {
    /// The `sdk-go` directory, for a `replace` directive.
    pub go: Option<PathBuf>,
    /// The `sdk-ts` directory, imported by path.
    pub ts: Option<PathBuf>,
    /// The `sykli` crate directory, as a path dependency.
    pub rust: Option<PathBuf>,
}

impl SdkSources {
    /// Reads `SYKLI_GO_SDK`, `SYKLI_TS_SDK` and `SYKLI_RUST_SDK`.
    pub fn from_env() -> Self {
        let var = |k| std::env::var_os(k).map(PathBuf::from);
        SdkSources {
            go: var("SYKLI_GO_SDK"),
            ts: var("SYKLI_TS_SDK"),
            rust: var("SYKLI_RUST_SDK"),
        }
    }
}

/// Why `sykli init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A pipeline file is already there.
    #[error("failed to create {}: it already exists", .0.display())]
    Exists(PathBuf),
    /// Writing failed.
    #[error("failed to write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// What `sykli init` did: files written and a next step for the user, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaffolded {
    /// Files created, in order.
    pub written: Vec<PathBuf>,
    /// What the user still has to do (e.g. add a dependency), one line each.
    pub next_steps: Vec<String>,
}

const GO_STARTER: &str = r#"//go:build ignore

// sykli.go: this project's CI pipeline. `sykli` runs it; `go run sykli.go --emit` prints
// its task graph.
package main

import sykli "sykli.dev/sdk-go"

func main() {
	s := sykli.New()
	s.Task("hello").Run("echo hello from sykli")
	s.Task("world").Run("echo the graph runs in dependency order").After("hello")
	s.Emit()
}
"#;

const TS_STARTER: &str = r#"// sykli.ts: this project's CI pipeline. `sykli` runs it; `npx tsx sykli.ts --emit` prints
// its task graph.
import { Pipeline } from "@SDK@";

const p = new Pipeline();
p.task("hello").run("echo hello from sykli");
p.task("world").run("echo the graph runs in dependency order").after("hello");
p.emit();
"#;

const RUST_STARTER: &str = r#"//! sykli.rs: this project's CI pipeline. `sykli` runs it; `cargo run --bin ci -- --emit`
//! prints its task graph.
use sykli::Pipeline;

fn main() {
    let p = Pipeline::new();
    p.task("hello").run("echo hello from sykli");
    p.task("world")
        .run("echo the graph runs in dependency order")
        .after(&["hello"]);
    p.emit_or_exit();
}
"#;

/// Writes the starter pipeline for `lang` into `dir`. Never overwrites: an existing pipeline
/// file is an error, an existing `go.mod` / `Cargo.toml` is left alone (with a next step).
pub fn scaffold(dir: &Path, lang: Language, sdks: &SdkSources) -> Result<Scaffolded, InitError> {
    for name in ["sykli.rs", "sykli.go", "sykli.ts"] {
        let p = dir.join(name);
        if p.exists() {
            return Err(InitError::Exists(p));
        }
    }
    let mut done = Scaffolded {
        written: Vec::new(),
        next_steps: Vec::new(),
    };
    match lang {
        Language::Go => {
            write(dir.join("sykli.go"), GO_STARTER, &mut done)?;
            let go_mod = dir.join("go.mod");
            if go_mod.exists() {
                done.next_steps
                    .push("add the SDK to go.mod: go get sykli.dev/sdk-go".into());
            } else {
                let mut text = format!(
                    "module {}\n\ngo 1.21\n\nrequire sykli.dev/sdk-go v0.1.0\n",
                    module_name(dir)
                );
                if let Some(sdk) = &sdks.go {
                    text.push_str(&format!(
                        "\nreplace sykli.dev/sdk-go => {}\n",
                        sdk.display()
                    ));
                }
                write(go_mod, &text, &mut done)?;
            }
        }
        Language::TypeScript => {
            let import = match &sdks.ts {
                Some(sdk) => sdk.join("src").join("index.ts").display().to_string(),
                None => {
                    done.next_steps
                        .push("install the SDK: npm install --save-dev @sykli/sdk tsx".into());
                    "@sykli/sdk".to_string()
                }
            };
            write(
                dir.join("sykli.ts"),
                &TS_STARTER.replace("@SDK@", &import),
                &mut done,
            )?;
        }
        Language::Rust => {
            write(dir.join("sykli.rs"), RUST_STARTER, &mut done)?;
            let cargo = dir.join("Cargo.toml");
            let dep = match &sdks.rust {
                Some(p) => format!("sykli = {{ path = \"{}\" }}", p.display()),
                None => "sykli = \"0.1\"".to_string(),
            };
            if cargo.exists() {
                done.next_steps.push(format!(
                    "add to Cargo.toml: [[bin]] name = \"ci\", path = \"sykli.rs\"; and under [dependencies]: {dep}"
                ));
            } else {
                let text = format!(
                    "[package]\nname = \"{}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[[bin]]\nname = \"ci\"\npath = \"sykli.rs\"\n\n[dependencies]\n{dep}\n",
                    module_name(dir)
                );
                write(cargo, &text, &mut done)?;
            }
        }
    }
    Ok(done)
}

fn module_name(dir: &Path) -> String {
    let name: String = std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        format!("ci-{name}").trim_end_matches('-').to_string()
    } else {
        name
    }
}

fn write(path: PathBuf, text: &str, done: &mut Scaffolded) -> Result<(), InitError> {
    std::fs::write(&path, text).map_err(|source| InitError::Io {
        path: path.clone(),
        source,
    })?;
    done.written.push(path);
    Ok(())
}
