//! Native tasks: in-process functions, `ctx.sh`, outputs, errors, panics, timeouts.

mod common;

use std::time::Duration;

use common::{Project, marker, processes_with};
use serde_json::json;
use sykli_runtime::{NativeError, NativeRegistry, TaskCtx, TaskStatus};

fn registry(m: String) -> NativeRegistry {
    let mut r = NativeRegistry::new();
    r.register("build", |ctx: TaskCtx| async move {
        ctx.log(format!(
            "building {} in {}",
            ctx.name(),
            ctx.workdir().display()
        ));
        ctx.sh("echo from-sh; echo \"$MODE\" > mode.txt").await?;
        ctx.cmd("sh", ["-c", "echo from-cmd"]).await?;
        std::fs::create_dir_all(ctx.workdir().join("out"))?;
        std::fs::write(ctx.workdir().join("out/app"), "binary")?;
        ctx.output("app", "out/app")?;
        let token = ctx.secret("NATIVE_TOKEN")?;
        ctx.log(format!(
            "secret is {token} and its value {}",
            token.expose()
        ));
        Ok(())
    });
    r.register("fails", |ctx: TaskCtx| async move {
        ctx.sh("exit 4").await?;
        Ok(())
    });
    r.register("panics", |_ctx: TaskCtx| async move {
        if true {
            panic!("kaboom");
        }
        Ok::<(), NativeError>(())
    });
    r.register("escapes", |ctx: TaskCtx| async move {
        ctx.output("x", "../outside")?;
        Ok(())
    });
    r.register("slow", move |ctx: TaskCtx| {
        let m = m.clone();
        async move {
            ctx.sh(&format!("sleep 30; : {m}")).await?;
            Ok(())
        }
    });
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_tasks_run_in_process_with_sh_outputs_and_secrets() {
    let p = Project::new();
    // SAFETY: set once before the run; nothing else in this binary touches the environment.
    unsafe { std::env::set_var("NATIVE_TOKEN_SRC", "native-s3cret-value") };
    let m = marker("native");
    let mut c = p.config();
    c.native = registry(m.clone());
    c.keep_going = true;
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                // The function records where `app` really is (overriding the declared path).
                {"name": "build", "native": "build", "env": {"MODE": "release"}, "outputs": {"app": "dist/app"},
                 "secret_refs": [{"name": "NATIVE_TOKEN", "source": "env", "key": "NATIVE_TOKEN_SRC"}]},
                {"name": "use", "command": "cat app", "task_inputs": [{"from_task": "build", "output": "app", "dest": "app"}]},
                {"name": "fails", "native": "fails"},
                {"name": "panics", "native": "panics"},
                {"name": "escapes", "native": "escapes", "outputs": {"x": "x"}},
                {"name": "unknown", "native": "nope"},
                {"name": "slow", "native": "slow", "timeout": 1},
            ]}),
            c,
        )
        .await;
    assert_eq!(
        ev.status("build"),
        TaskStatus::Passed,
        "{:?}",
        ev.report("build")
    );
    let out = ev.output("build");
    assert!(out[0].starts_with("building build in "));
    assert_eq!(&out[1..3], ["from-sh", "from-cmd"]);
    assert_eq!(out[3], "secret is *** and its value ***");
    assert_eq!(p.read("mode.txt"), "release\n");
    assert_eq!(ev.status("use"), TaskStatus::Passed);
    assert_eq!(ev.output("use"), ["binary"]);

    let fails = ev.report("fails");
    assert_eq!(
        (fails.status, fails.exit_code),
        (TaskStatus::Failed, Some(1))
    );
    assert_eq!(
        ev.output("fails"),
        ["error: command `exit 4` exited with code 4"]
    );
    let panics = ev.report("panics");
    assert_eq!(panics.status, TaskStatus::Errored);
    assert!(panics.message.unwrap().contains("panicked: kaboom"));
    assert!(ev.output("escapes")[0].contains("output `x`"));
    let unknown = ev.report("unknown");
    assert_eq!(unknown.status, TaskStatus::Errored);
    assert!(
        unknown
            .message
            .unwrap()
            .contains("no native function `nope`")
    );
    let slow = ev.report("slow");
    assert_eq!(slow.status, TaskStatus::Errored);
    assert_eq!(slow.message.as_deref(), Some("timed out after 1s"));
    for _ in 0..50 {
        if processes_with(&m).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        processes_with(&m).is_empty(),
        "ctx.sh child survived the timeout"
    );
    assert!(!ev.all_json().contains("native-s3cret-value"));
    assert_eq!(s.passed, 2);
}

/// A native task whose function is not registered in this process (e.g. `sykli run` on the
/// graph a pipeline binary emitted) runs its `command`, which runs the function in that
/// binary; with the function registered, it runs in-process and the command is not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_native_tasks_run_their_command() {
    let p = Project::new();
    let graph = json!({"version": "1", "tasks": [
        {"name": "gen", "native": "gen", "command": "echo via-command > how.txt"},
    ]});
    let (s, ev) = p.run(graph.clone(), p.config()).await;
    assert!(s.ok(), "{:?}", ev.report("gen"));
    assert_eq!(p.read("how.txt"), "via-command\n");

    let mut c = p.config();
    c.native.register("gen", |ctx: TaskCtx| async move {
        std::fs::write(ctx.workdir().join("how.txt"), "in-process\n")?;
        Ok(())
    });
    let (s, ev) = p.run(graph, c).await;
    assert!(s.ok(), "{:?}", ev.report("gen"));
    assert_eq!(p.read("how.txt"), "in-process\n");
}
