//! Reporters: [`EventSink`](sykli_runtime::events::EventSink)s that show a run to people and
//! programs. They never call back into the scheduler, and an I/O error while writing (a closed
//! pipe, a full disk) is ignored rather than allowed to disturb the run.
//!
//! - [`TerminalReporter`]: a live view of running tasks on a terminal, plain lines otherwise;
//!   the output of failed tasks, the detail line and the final `sykli: ...` line.
//! - [`Envelope`]: the one JSON document every `--json` command prints (`docs/json.md`),
//!   and [`RunData`], a run as `sykli run --json`, `sykli report` and `sykli history` show it.
//! - [`Fanout`]: sends every event to several sinks.
//! - [`RunCollector`]: collects a run for the reports written after it: JUnit XML
//!   ([`junit_xml`]) and, under GitHub Actions, annotations and the job summary ([`github`]).

mod collect;
mod fanout;
mod format;
pub mod github;
mod json;
mod junit;
mod tails;
mod terminal;

pub use collect::{CollectedRun, CollectedTask, RunCollector, record_formats};
pub use fanout::Fanout;
pub use format::{detail_line, final_line, format_duration};
pub use json::{ERROR_CODES, Envelope, ErrorBody, RunData, TaskJson, run_envelope, to_data};
pub use junit::{junit_xml, write_junit};
pub use terminal::{TerminalOptions, TerminalReporter};
