//! Reporters: [`EventSink`](sykli_runtime::events::EventSink)s that show a run to people and
//! programs. They never call back into the scheduler, and an I/O error while writing (a closed
//! pipe, a full disk) is ignored rather than allowed to disturb the run.
//!
//! - [`TerminalReporter`]: a live view of running tasks on a terminal, plain lines otherwise;
//!   the output of failed tasks, the detail line and the final `sykli: ...` line.
//! - [`JsonReporter`]: collects the run and renders one `--json` envelope at the end.
//! - [`Fanout`]: sends every event to several sinks.

mod fanout;
mod format;
mod json;
mod tails;
mod terminal;

pub use fanout::Fanout;
pub use format::{detail_line, final_line, format_duration};
pub use json::{Envelope, ErrorBody, JsonReporter, RunData, TaskJson};
pub use terminal::{TerminalOptions, TerminalReporter};
