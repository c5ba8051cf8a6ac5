//! `sykli import`: a GitHub Actions workflow (or a Loom `.loom.yml`, see [`loom`]) turned
//! into a pipeline in an SDK.
//!
//! One task per job. Translated: the job's `run:` steps (one shell script; a step's `env`
//! and `working-directory` hold in a subshell around that step), `needs`, `runs-on` (to an image, [`IMAGES`]),
//! `container` (its image wins over `runs-on`), `env` of the workflow and the job (the job's
//! wins), `services` (name and image), `strategy.matrix` (lists of scalar values) and
//! `timeout-minutes`, and a job's `if:` where it maps to a sykli condition ([`github_if`]).
//! Everything else is listed, never dropped: `uses:` steps, other `if:` conditions (and every
//! step's: sykli conditions hold for whole tasks), `${{ }}` expressions (kept
//! verbatim in the text, and listed, except `${{ matrix.KEY }}` and `${{ env.NAME }}`, which
//! become shell variables), matrix `include`/`exclude`, service ports and options,
//! and any other key. The list goes into the generated file as comments and is returned for
//! the CLI to print on stderr.
//!
//! `--to rust`, `--to go` and `--to ts` generate code with each SDK's builder.

pub mod github_if;
pub mod loom;

use std::collections::BTreeMap;
use std::path::Path;

use serde_norway::{Mapping, Value};

/// The default image of each GitHub-hosted Linux runner label.
pub const IMAGES: &[(&str, &str)] = &[
    ("ubuntu-latest", "ubuntu:24.04"),
    ("ubuntu-24.04", "ubuntu:24.04"),
    ("ubuntu-22.04", "ubuntu:22.04"),
    ("ubuntu-20.04", "ubuntu:20.04"),
];

/// The SDK a pipeline is generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `sykli.rs`.
    Rust,
    /// `sykli.go`.
    Go,
    /// `sykli.ts`.
    TypeScript,
}

/// Why a workflow could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not YAML.
    #[error("the workflow is not valid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    /// The YAML is not a workflow of the shape GitHub Actions reads.
    #[error("not a GitHub Actions workflow: {0}")]
    Shape(String),
    /// The YAML is not a workflow of the shape Loom reads.
    #[error("not a Loom workflow: {0}")]
    LoomShape(String),
}

/// Translates the workflow in `text`, read from `path`: a Loom workflow when the file name
/// ends in `.loom.yml` or `.loom.yaml`, else a GitHub Actions workflow.
pub fn translate_file(path: &Path, text: &str) -> Result<Imported, ImportError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.ends_with(".loom.yml") || name.ends_with(".loom.yaml") {
        loom::translate(text)
    } else {
        translate(text)
    }
}

/// One job as a task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportedTask {
    /// The job id.
    pub name: String,
    /// The shell script of its `run:` steps.
    pub command: String,
    /// `needs`.
    pub depends_on: Vec<String>,
    /// The image of `container` or of `runs-on`.
    pub container: Option<String>,
    /// Workflow, job and step `env`.
    pub env: BTreeMap<String, String>,
    /// `services`: (name, image).
    pub services: Vec<(String, String)>,
    /// `strategy.matrix`.
    pub matrix: BTreeMap<String, Vec<String>>,
    /// `timeout-minutes`, in minutes.
    pub timeout_minutes: Option<u64>,
    /// The sykli condition of the job's `if:`.
    pub when: Option<String>,
    /// Mount the project at the container's working directory (a Loom job's workspace).
    pub mount_cwd: bool,
}

/// A translated workflow and what could not be translated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// One task per job, in the workflow's order.
    pub tasks: Vec<ImportedTask>,
    /// What was not translated, one line each (`job `build`: step 1 `uses: ...``).
    pub untranslated: Vec<String>,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn key(k: &Value) -> String {
    scalar(k).unwrap_or_else(|| format!("{k:?}"))
}

/// Notes every `${{ ... }}` in `text` (found at `at`).
fn expressions(text: &str, at: &str, out: &mut Vec<String>) {
    translate_expressions(text, &BTreeMap::new(), at, out);
}

/// `text` with `${{ matrix.KEY }}` (KEY a dimension of `matrix`) and `${{ env.NAME }}` as
/// shell variables (sykli puts matrix values into the task's environment); every other
/// `${{ ... }}` is kept verbatim and noted.
fn translate_expressions(
    text: &str,
    matrix: &BTreeMap<String, Vec<String>>,
    at: &str,
    out: &mut Vec<String>,
) -> String {
    let ident = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut result = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${{") {
        let end = rest[i..].find("}}").map_or(rest.len(), |j| i + j + 2);
        let expr = &rest[i..end];
        result.push_str(&rest[..i]);
        let inner = expr.trim_start_matches("${{").trim_end_matches("}}").trim();
        let var = match inner.split_once('.') {
            Some(("matrix", k)) if ident(k) && matrix.contains_key(k) => Some(k),
            Some(("env", k)) if ident(k) => Some(k),
            _ => None,
        };
        match var {
            Some(v) => result.push_str(&format!("${{{v}}}")),
            None => {
                out.push(format!("{at}: expression `{expr}` kept verbatim"));
                result.push_str(expr);
            }
        }
        rest = &rest[end..];
    }
    result.push_str(rest);
    result
}

/// Reads `env` of a mapping into `into`, noting values that are not scalars.
fn env(m: &Mapping, at: &str, into: &mut BTreeMap<String, String>, notes: &mut Vec<String>) {
    let Some(Value::Mapping(e)) = m.get("env") else {
        if let Some(v) = m.get("env") {
            notes.push(format!("{at}: `env` {v:?} is not a mapping"));
        }
        return;
    };
    for (k, v) in e {
        let k = key(k);
        match scalar(v) {
            Some(v) => {
                expressions(&v, &format!("{at}: env {k}"), notes);
                into.insert(k, v);
            }
            None => notes.push(format!("{at}: env {k} is not a scalar")),
        }
    }
}

/// Translates a GitHub Actions workflow (YAML text).
pub fn translate(yaml: &str) -> Result<Imported, ImportError> {
    let doc: Value = serde_norway::from_str(yaml)?;
    let Value::Mapping(root) = doc else {
        return Err(ImportError::Shape("the document is not a mapping".into()));
    };
    let mut out = Imported::default();
    let notes = &mut out.untranslated;
    let mut workflow_env = BTreeMap::new();
    env(&root, "workflow", &mut workflow_env, notes);
    for (k, _) in &root {
        let k = key(k);
        if !matches!(k.as_str(), "name" | "env" | "jobs") {
            notes.push(format!("workflow: `{k}` not translated"));
        }
    }
    let Some(Value::Mapping(jobs)) = root.get("jobs") else {
        return Err(ImportError::Shape("it has no `jobs` mapping".into()));
    };
    for (id, job) in jobs {
        let id = key(id);
        let Value::Mapping(job) = job else {
            return Err(ImportError::Shape(format!("job `{id}` is not a mapping")));
        };
        let at = format!("job `{id}`");
        let mut t = ImportedTask {
            name: id.clone(),
            env: workflow_env.clone(),
            ..Default::default()
        };
        for (k, v) in job {
            let k = key(k);
            match k.as_str() {
                "steps" | "env" | "name" => {}
                "needs" => match v {
                    Value::Sequence(s) => t.depends_on = s.iter().filter_map(scalar).collect(),
                    v => t.depends_on.extend(scalar(v)),
                },
                "runs-on" => match scalar(v) {
                    Some(label) => match IMAGES.iter().find(|(l, _)| *l == label) {
                        Some((_, image)) => {
                            t.container.get_or_insert_with(|| (*image).to_owned());
                        }
                        None => notes.push(format!(
                            "{at}: `runs-on: {label}` has no image; it runs on the host"
                        )),
                    },
                    None => notes.push(format!("{at}: `runs-on` {v:?} not translated")),
                },
                "container" => {
                    let image = match v {
                        Value::Mapping(c) => {
                            for (ck, _) in c {
                                let ck = key(ck);
                                if ck != "image" {
                                    notes.push(format!("{at}: container `{ck}` not translated"));
                                }
                            }
                            c.get("image").and_then(scalar)
                        }
                        v => scalar(v),
                    };
                    match image {
                        Some(i) => t.container = Some(i),
                        None => notes.push(format!("{at}: `container` has no image")),
                    }
                }
                "services" => {
                    let Value::Mapping(s) = v else {
                        notes.push(format!("{at}: `services` is not a mapping"));
                        continue;
                    };
                    for (name, svc) in s {
                        let name = key(name);
                        let image = match svc {
                            Value::Mapping(m) => {
                                for (sk, _) in m {
                                    let sk = key(sk);
                                    if sk != "image" {
                                        notes.push(format!(
                                            "{at}: service `{name}`: `{sk}` not translated"
                                        ));
                                    }
                                }
                                m.get("image").and_then(scalar)
                            }
                            v => scalar(v),
                        };
                        match image {
                            Some(i) => t.services.push((name, i)),
                            None => notes.push(format!("{at}: service `{name}` has no image")),
                        }
                    }
                }
                "strategy" => {
                    let Some(Value::Mapping(m)) = v.get("matrix") else {
                        notes.push(format!("{at}: `strategy` without a matrix mapping"));
                        continue;
                    };
                    if let Value::Mapping(s) = v {
                        for (sk, _) in s {
                            let sk = key(sk);
                            if sk != "matrix" {
                                notes.push(format!("{at}: strategy `{sk}` not translated"));
                            }
                        }
                    }
                    for (mk, mv) in m {
                        let mk = key(mk);
                        let values: Option<Vec<String>> = match mv {
                            Value::Sequence(s) => s.iter().map(scalar).collect(),
                            _ => None,
                        };
                        match values {
                            Some(vals) if mk != "include" && mk != "exclude" => {
                                t.matrix.insert(mk, vals);
                            }
                            _ => notes.push(format!("{at}: matrix `{mk}` not translated")),
                        }
                    }
                }
                "timeout-minutes" => match v.as_u64() {
                    Some(m) => t.timeout_minutes = Some(m),
                    None => notes.push(format!("{at}: `timeout-minutes` {v:?} not translated")),
                },
                "if" => {
                    let text = scalar(v).unwrap_or_default();
                    match github_if::translate(&text) {
                        Ok(when) => t.when = when,
                        Err(why) => {
                            notes.push(format!("{at}: `if: {text}` not translated ({why})"))
                        }
                    }
                }
                other => notes.push(format!("{at}: `{other}` not translated")),
            }
        }
        env(job, &at, &mut t.env, notes);
        let steps = match job.get("steps") {
            Some(Value::Sequence(s)) => s.as_slice(),
            Some(_) => return Err(ImportError::Shape(format!("{at}: `steps` is not a list"))),
            None => &[],
        };
        let mut script: Vec<String> = Vec::new();
        for (n, step) in steps.iter().enumerate() {
            let sat = format!("{at}: step {}", n + 1);
            let Value::Mapping(step) = step else {
                return Err(ImportError::Shape(format!("{sat} is not a mapping")));
            };
            for (k, v) in step {
                let k = key(k);
                match k.as_str() {
                    "run" | "name" | "env" | "working-directory" | "shell" => {}
                    "uses" => notes.push(format!(
                        "{sat}: `uses: {}` not translated",
                        scalar(v).unwrap_or_default()
                    )),
                    "if" => {
                        let text = scalar(v).unwrap_or_default();
                        let hint = match github_if::translate(&text) {
                            Ok(Some(c)) => format!("; as a task's condition it reads `{c}`"),
                            _ => String::new(),
                        };
                        notes.push(format!(
                            "{sat}: `if: {text}` not translated (sykli conditions hold for \
                             whole tasks, not steps{hint})"
                        ))
                    }
                    other => notes.push(format!("{sat}: `{other}` not translated")),
                }
            }
            if let Some(shell) = step.get("shell").and_then(scalar)
                && shell != "bash"
                && shell != "sh"
            {
                notes.push(format!("{sat}: `shell: {shell}` not translated"));
            }
            // A step's env and directory hold for that step only: a subshell.
            let mut step_env = BTreeMap::new();
            env(step, &sat, &mut step_env, notes);
            let Some(run) = step.get("run").and_then(scalar) else {
                if !step_env.is_empty() {
                    notes.push(format!(
                        "{sat}: `env` of a step without `run` not translated"
                    ));
                }
                continue;
            };
            let run = translate_expressions(run.trim_end(), &t.matrix, &sat, notes);
            let mut prelude: Vec<String> = step_env
                .iter()
                .map(|(k, v)| format!("export {k}={}", shell_quote(v)))
                .collect();
            if let Some(dir) = step.get("working-directory").and_then(scalar) {
                prelude.push(format!("cd {}", shell_quote(&dir)));
            }
            script.push(if prelude.is_empty() {
                run
            } else {
                format!("(\n{}\n{run}\n)", prelude.join("\n"))
            });
        }
        if script.is_empty() {
            notes.push(format!(
                "{at}: no `run` step; the task only echoes its name"
            ));
            script.push(format!("echo {id}"));
        }
        // Each GitHub step runs with `bash -e`: the script stops at the first failure.
        t.command = script.join("\n");
        if t.command.contains('\n') {
            t.command = format!("set -e\n{}", t.command);
        }
        out.tasks.push(t);
    }
    Ok(out)
}

/// `s` as one single-quoted shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A Go string literal (JSON string escapes are valid Go escapes).
fn go_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The pipeline source of `imported` for `target`; `source` names the workflow in the
/// header, `ts_import` is what a TypeScript pipeline imports the SDK from (`@sykli/sdk`, or a
/// local checkout's `src/index.ts`).
pub fn generate(
    imported: &Imported,
    source: &str,
    target: Target,
    ts_import: &str,
) -> Result<String, ImportError> {
    Ok(match target {
        Target::Go => generate_go(imported, source),
        Target::Rust => generate_rust(imported, source),
        Target::TypeScript => generate_ts(imported, source, ts_import),
    })
}

fn generate_ts(imported: &Imported, source: &str, sdk: &str) -> String {
    let mut s = format!("// sykli.ts: generated by `sykli import {source} --to ts`.\n");
    s.push_str(&untranslated_comment(imported));
    s.push_str(&format!(
        "import {{ Pipeline }} from {};\n\nconst p = new Pipeline();\n",
        go_str(sdk)
    ));
    for t in &imported.tasks {
        s.push_str(&format!(
            "p.task({})\n  .run({})",
            go_str(&t.name),
            go_str(&t.command)
        ));
        if !t.depends_on.is_empty() {
            let deps: Vec<String> = t.depends_on.iter().map(|d| go_str(d)).collect();
            s.push_str(&format!("\n  .after({})", deps.join(", ")));
        }
        if let Some(c) = &t.container {
            s.push_str(&format!("\n  .container({})", go_str(c)));
        }
        if t.mount_cwd {
            s.push_str("\n  .mountCwd()");
        }
        for (k, v) in &t.env {
            s.push_str(&format!("\n  .env({}, {})", go_str(k), go_str(v)));
        }
        for (name, image) in &t.services {
            s.push_str(&format!(
                "\n  .service({}, {})",
                go_str(image),
                go_str(name)
            ));
        }
        for (k, vals) in &t.matrix {
            let vals: Vec<String> = vals.iter().map(|v| go_str(v)).collect();
            s.push_str(&format!(
                "\n  .matrix({}, [{}])",
                go_str(k),
                vals.join(", ")
            ));
        }
        if let Some(m) = t.timeout_minutes {
            s.push_str(&format!("\n  .timeout({})", m * 60));
        }
        if let Some(w) = &t.when {
            s.push_str(&format!("\n  .when({})", go_str(w)));
        }
        s.push_str(";\n");
    }
    s.push_str("p.emit();\n");
    s
}

/// The comment block listing what was not translated.
fn untranslated_comment(imported: &Imported) -> String {
    let mut s = String::new();
    if imported.untranslated.is_empty() {
        s.push_str("// Everything in the workflow was translated.\n");
    } else {
        s.push_str("//\n// Not translated (review these by hand):\n");
        for n in &imported.untranslated {
            s.push_str(&format!("//   - {}\n", n.replace('\n', " ")));
        }
    }
    s
}

fn generate_go(imported: &Imported, source: &str) -> String {
    let mut s = format!(
        "//go:build ignore\n\n// sykli.go: generated by `sykli import {source} --to go`.\n"
    );
    s.push_str(&untranslated_comment(imported));
    s.push_str("package main\n\nimport (\n");
    if imported.tasks.iter().any(|t| t.timeout_minutes.is_some()) {
        s.push_str("\t\"time\"\n\n");
    }
    s.push_str("\tsykli \"sykli.dev/sdk-go\"\n)\n\nfunc main() {\n\tp := sykli.New()\n");
    for t in &imported.tasks {
        s.push_str(&format!(
            "\tp.Task({}).\n\t\tRun({})",
            go_str(&t.name),
            go_str(&t.command)
        ));
        if !t.depends_on.is_empty() {
            let deps: Vec<String> = t.depends_on.iter().map(|d| go_str(d)).collect();
            s.push_str(&format!(".\n\t\tAfter({})", deps.join(", ")));
        }
        if let Some(c) = &t.container {
            s.push_str(&format!(".\n\t\tContainer({})", go_str(c)));
        }
        if t.mount_cwd {
            s.push_str(".\n\t\tMountCwd()");
        }
        for (k, v) in &t.env {
            s.push_str(&format!(".\n\t\tEnv({}, {})", go_str(k), go_str(v)));
        }
        for (name, image) in &t.services {
            s.push_str(&format!(
                ".\n\t\tService({}, {})",
                go_str(image),
                go_str(name)
            ));
        }
        for (k, vals) in &t.matrix {
            let mut args = vec![go_str(k)];
            args.extend(vals.iter().map(|v| go_str(v)));
            s.push_str(&format!(".\n\t\tMatrix({})", args.join(", ")));
        }
        if let Some(m) = t.timeout_minutes {
            s.push_str(&format!(".\n\t\tTimeout({m} * time.Minute)"));
        }
        if let Some(w) = &t.when {
            s.push_str(&format!(".\n\t\tWhen({})", go_str(w)));
        }
        s.push('\n');
    }
    s.push_str("\tp.Emit()\n}\n");
    s
}

/// A Rust string literal (`str`'s `Debug` output is one).
fn rust_str(s: &str) -> String {
    format!("{s:?}")
}

fn generate_rust(imported: &Imported, source: &str) -> String {
    let mut s = format!("//! sykli.rs: generated by `sykli import {source} --to rust`.\n");
    s.push_str(&untranslated_comment(imported));
    if imported.tasks.iter().any(|t| t.timeout_minutes.is_some()) {
        s.push_str("use std::time::Duration;\n\n");
    }
    s.push_str("use sykli::Pipeline;\n\nfn main() {\n    let p = Pipeline::new();\n");
    for t in &imported.tasks {
        s.push_str(&format!(
            "    p.task({})\n        .run({})",
            rust_str(&t.name),
            rust_str(&t.command)
        ));
        if !t.depends_on.is_empty() {
            let deps: Vec<String> = t.depends_on.iter().map(|d| rust_str(d)).collect();
            s.push_str(&format!("\n        .after(&[{}])", deps.join(", ")));
        }
        if let Some(c) = &t.container {
            s.push_str(&format!("\n        .container({})", rust_str(c)));
        }
        if t.mount_cwd {
            s.push_str("\n        .mount_cwd()");
        }
        for (k, v) in &t.env {
            s.push_str(&format!("\n        .env({}, {})", rust_str(k), rust_str(v)));
        }
        for (name, image) in &t.services {
            s.push_str(&format!(
                "\n        .service({}, {})",
                rust_str(image),
                rust_str(name)
            ));
        }
        for (k, vals) in &t.matrix {
            let vals: Vec<String> = vals.iter().map(|v| rust_str(v)).collect();
            s.push_str(&format!(
                "\n        .matrix({}, &[{}])",
                rust_str(k),
                vals.join(", ")
            ));
        }
        if let Some(m) = t.timeout_minutes {
            s.push_str(&format!(
                "\n        .timeout(Duration::from_secs({}))",
                m * 60
            ));
        }
        if let Some(w) = &t.when {
            s.push_str(&format!("\n        .when({})", rust_str(w)));
        }
        s.push_str(";\n");
    }
    s.push_str("    p.emit_or_exit();\n}\n");
    s
}
