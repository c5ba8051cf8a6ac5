//! `sykli graph [--dot]`: the validated task graph as Mermaid (default) or Graphviz DOT.

use std::fmt::Write as _;
use std::process::ExitCode;

use sykli_runtime::graph::ValidGraph;

use super::validate::check;
use super::{EXIT_INVALID, GraphArgs, print_out};

/// Runs `sykli graph`.
pub fn graph_command(args: &GraphArgs) -> ExitCode {
    match check(&args.pipeline.path) {
        Ok(v) => {
            print_out(&if args.dot { dot(&v) } else { mermaid(&v) });
            ExitCode::SUCCESS
        }
        Err(e) => {
            e.print();
            ExitCode::from(EXIT_INVALID)
        }
    }
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
