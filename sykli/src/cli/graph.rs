//! `sykli graph [--dot] [--json]`: the validated task graph as Mermaid (default) or Graphviz
//! DOT; with `--json`, the tasks and their dependencies plus that text.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::json;
use sykli_runtime::graph::ValidGraph;

use super::error::CliError;
use super::validate::check;
use super::{GraphArgs, print_out};
use crate::report::Envelope;

/// Runs `sykli graph`.
pub fn graph_command(args: &GraphArgs, json: bool) -> ExitCode {
    let v = match check(&args.pipeline.path) {
        Ok(v) => v,
        Err(e) => return CliError::from(e).report(json),
    };
    let (format, text) = if args.dot {
        ("dot", dot(&v))
    } else {
        ("mermaid", mermaid(&v))
    };
    if json {
        let tasks: Vec<_> = (0..v.len())
            .map(|i| {
                let deps: Vec<&str> = v.deps(i).iter().map(|&d| v.task(d).name.as_str()).collect();
                json!({ "name": v.task(i).name, "depends_on": deps })
            })
            .collect();
        let data = json!({ "tasks": tasks, "format": format, "text": text });
        print_out(&Envelope::success(data).to_line());
    } else {
        print_out(&text);
    }
    ExitCode::SUCCESS
}

/// Mermaid `graph TD`: nodes `t<index>["name"]`, an edge from each dependency to its dependent.
pub fn mermaid(v: &ValidGraph) -> String {
    let mut out = String::from("graph TD\n");
    for (i, t) in v.graph().tasks.iter().enumerate() {
        let label = t.name.replace('"', "#quot;");
        let _ = writeln!(out, "  t{i}[\"{label}\"]");
    }
    for i in 0..v.len() {
        for &d in v.deps(i) {
            let _ = writeln!(out, "  t{d} --> t{i}");
        }
    }
    out
}

/// Graphviz DOT: one node per task, an edge from each dependency to its dependent.
pub fn dot(v: &ValidGraph) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph sykli {\n  rankdir=TB;\n");
    for t in &v.graph().tasks {
        let _ = writeln!(out, "  {};", q(&t.name));
    }
    for i in 0..v.len() {
        for &d in v.deps(i) {
            let _ = writeln!(out, "  {} -> {};", q(&v.task(d).name), q(&v.task(i).name));
        }
    }
    out.push_str("}\n");
    out
}
