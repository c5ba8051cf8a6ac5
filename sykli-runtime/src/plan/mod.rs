//! The plan: what a run will do with every task, decided once, before anything runs.
//!
//! ```text
//! Graph (wire) ── validate ──► ValidGraph ── plan ──► Plan ──► scheduler ──► executors
//!                                              ▲
//!                   filter, condition context, executor registry, native functions
//! ```
//!
//! For each task the [`Plan`] holds the [`Decision`] (run, skip with the reason, blocked
//! behind a dependency that will not succeed, left out by `--filter`, or errored without
//! running), the value of its condition, the executor it is placed on and why
//! ([`Placement`], rules in [`placement`]), and its cache decision ([`CachePlan`]).
//! `sykli run`, `sykli explain`, `--json` and the run's events all read this one plan; the
//! scheduler consumes it and decides nothing of this again.
//!
//! Cache keys of tasks behind a dependency that will run are known only after that run
//! ([`CachePlan::AfterDependency`]); keys of the others are filled in by [`cache::decide`]
//! when asked (explain), and by the cache layer around the executor when the task starts
//! (a run, where dependency outputs are known).
//!
//! ```
//! use sykli_runtime::exec::ExecutorRegistry;
//! use sykli_runtime::graph::{ConditionContext, Graph, validate};
//! use sykli_runtime::plan::{Decision, PlanOptions, plan};
//! use sykli_runtime::{NativeRegistry, RunConfig};
//!
//! let g = Graph::from_json(r#"{"version": "1", "tasks": [
//!     {"name": "build", "command": "make"},
//!     {"name": "deploy", "command": "make deploy", "when": "branch == 'main'"}]}"#).unwrap();
//! let valid = validate(&g).unwrap();
//! let config = RunConfig::new(".");
//! let executors = config.registry();
//! let ctx = ConditionContext { branch: Some("dev".into()), ..Default::default() };
//! let p = plan(&valid, &PlanOptions::new(&ctx, &executors, &config.native)).unwrap();
//! assert_eq!(p.task(0).decision, Decision::Run);
//! assert!(matches!(p.task(1).decision, Decision::Skip));
//! assert_eq!(p.executor_name(0), Some("process"));
//! ```

pub mod affected;
pub mod cache;
mod decide;
mod model;
pub mod placement;
mod report;

pub use affected::{Affected, AffectedBy, AffectedError, affected, changed_since};
pub use decide::{PlanError, PlanOptions, plan};
pub use model::{CachePlan, ConditionValue, Decision, Plan, TaskPlan};
pub use placement::{PlaceError, PlacedBy, Placement};
pub use report::{ConditionReport, PlanReport, ResourcesReport, TaskPlanReport};
