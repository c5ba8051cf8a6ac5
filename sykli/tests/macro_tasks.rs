//! Tasks declared with `#[sykli::task]` in several modules of one program: what they
//! register, and their functions called through the runtime's native executor.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sykli::runtime::exec::native::NativeExecutor;
use sykli::runtime::exec::process::ProcessExecutor;
use sykli::runtime::exec::{Action, ExecIo, ExecOutcome, ExecRequest, OutputSink, OutputStream};
use sykli::runtime::graph::{Placement, Task};
use sykli::tasks::declared_tasks;
use tokio_util::sync::CancellationToken;

mod checks {
    use sykli::{NativeError, TaskCtx};

    /// Writes `checked.txt` with a shell command run through the context.
    #[sykli::task(inputs = ["src/**"], outputs = {"report": "checked.txt"}, retry = 0)]
    pub async fn check_all(ctx: &TaskCtx) -> Result<(), NativeError> {
        ctx.sh("printf ok > checked.txt").await
    }

    #[sykli::task(cmd = "cargo fmt --check", name = "format", env = {"B": "2", "A": "1"}, tests = "tap")]
    pub fn fmt() {}
}

mod build {
    use super::checks::{check_all, fmt};
    use sykli::TaskCtx;

    /// Fails with an `std::io::Error` (missing file).
    #[sykli::task(after = [check_all, fmt, "format"], timeout = "1m 30s", requires = ["linux"])]
    pub async fn compile(ctx: &TaskCtx) -> std::io::Result<()> {
        std::fs::read(ctx.workdir().join("missing.txt")).map(drop)
    }

    /// Fails with an `anyhow::Error` carrying context.
    #[sykli::task(after = [crate::checks::check_all], remote, prefer = Local, target = "k8s", when = "branch == 'main'")]
    pub async fn package(_ctx: &TaskCtx) -> anyhow::Result<()> {
        let inner = std::io::Error::new(std::io::ErrorKind::NotFound, "no dist/ directory");
        Err(anyhow::Error::new(inner).context("failed to package"))
    }

    /// Fails with a plain `String`.
    #[sykli::task(no_cache, secrets = ["TOKEN"], workdir = "sub", outputs = ["a.txt", "b.txt"])]
    pub async fn r#publish(_ctx: &TaskCtx) -> Result<(), String> {
        Err("registry refused the upload".to_string())
    }
}

fn declared() -> BTreeMap<String, Task> {
    let d = declared_tasks(|name| format!("exec {name}")).expect("no duplicate names");
    d.tasks.into_iter().map(|t| (t.name.clone(), t)).collect()
}

#[test]
fn every_attribute_reaches_the_wire_task() {
    let tasks = declared();
    assert_eq!(
        tasks.keys().collect::<Vec<_>>(),
        ["check-all", "compile", "format", "package", "publish"]
    );

    let check = &tasks["check-all"];
    assert_eq!(check.command.as_deref(), Some("exec check-all"));
    assert_eq!(check.native.as_deref(), Some("check-all"));
    assert_eq!(check.inputs, ["src/**"]);
    assert_eq!(check.outputs["report"], "checked.txt");
    assert_eq!(check.retry, Some(0));

    let format = &tasks["format"];
    assert_eq!(format.command.as_deref(), Some("cargo fmt --check"));
    assert_eq!(format.native, None);
    assert_eq!(format.tests.as_deref(), Some("tap"));
    assert_eq!(
        format.env.iter().collect::<Vec<_>>(),
        [
            (&"A".to_string(), &"1".to_string()),
            (&"B".to_string(), &"2".to_string())
        ]
    );

    // `after = [check_all, fmt, "format"]`: functions resolve to task names (including the
    // renamed one), duplicates dropped.
    let compile = &tasks["compile"];
    assert_eq!(compile.depends_on, ["check-all", "format"]);
    assert_eq!(compile.timeout, Some(90));
    assert_eq!(compile.requires, ["linux"]);

    let package = &tasks["package"];
    assert_eq!(package.depends_on, ["check-all"]);
    assert!(package.remote);
    assert_eq!(package.prefer, Some(Placement::Local));
    assert_eq!(package.target.as_deref(), Some("k8s"));
    assert_eq!(package.when.as_deref(), Some("branch == 'main'"));

    let publish = &tasks["publish"];
    assert_eq!(publish.cache, Some(false));
    assert_eq!(publish.secrets, ["TOKEN"]);
    assert_eq!(publish.workdir.as_deref(), Some("sub"));
    assert_eq!(publish.outputs["output_0"], "a.txt");
    assert_eq!(publish.outputs["output_1"], "b.txt");
}

#[derive(Default)]
struct Captured(Mutex<Vec<u8>>);

impl OutputSink for Captured {
    fn write(&self, _stream: OutputStream, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
}

/// Runs the native task `task` in `dir` through the runtime's native executor.
async fn run_native(task: &str, dir: &Path) -> (ExecOutcome, String) {
    let declared = declared_tasks(|name| format!("exec {name}")).unwrap();
    let executor = NativeExecutor::new(declared.registry(), ProcessExecutor::default());
    let req = ExecRequest {
        task: task.to_string(),
        action: Action::Native(task.to_string()),
        env: BTreeMap::new(),
        inherit_env: true,
        workdir: dir.to_path_buf(),
        container: None,
        timeout: None,
        kill_grace: Duration::from_secs(1),
        run_id: "test".to_string(),
        background: None,
        sandbox: None,
    };
    let output = Arc::new(Captured::default());
    let io = ExecIo {
        attempt: 1,
        output: output.clone(),
        cancel: CancellationToken::new(),
        operations: None,
    };
    let (outcome, _) = executor.run(&req, io).await;
    let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
    (outcome, text)
}

#[tokio::test]
async fn a_native_task_runs_with_its_context() {
    let dir = tempfile::tempdir().unwrap();
    let (outcome, _) = run_native("check-all", dir.path()).await;
    assert_eq!(outcome, ExecOutcome::Exited { code: 0 });
    assert_eq!(
        std::fs::read_to_string(dir.path().join("checked.txt")).unwrap(),
        "ok"
    );
}

#[tokio::test]
async fn task_errors_of_every_kind_keep_their_message_and_causes() {
    let dir = tempfile::tempdir().unwrap();

    let (outcome, text) = run_native("compile", dir.path()).await;
    assert_eq!(outcome, ExecOutcome::Exited { code: 1 });
    assert_eq!(text, "error: No such file or directory (os error 2)\n");

    let (outcome, text) = run_native("package", dir.path()).await;
    assert_eq!(outcome, ExecOutcome::Exited { code: 1 });
    assert_eq!(text, "error: failed to package: no dist/ directory\n");

    let (outcome, text) = run_native("publish", dir.path()).await;
    assert_eq!(outcome, ExecOutcome::Exited { code: 1 });
    assert_eq!(text, "error: registry refused the upload\n");
}
