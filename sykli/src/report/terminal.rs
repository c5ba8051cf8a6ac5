//! The human reporter: a live view on a terminal, plain lines otherwise.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use console::{Style, style};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sykli_runtime::TaskStatus;
use sykli_runtime::events::{Event, EventSink, RunSummary, TaskReport};
use sykli_runtime::state;

use super::format::{detail_line, final_line, format_duration};
use super::tails::Tails;

/// How the [`TerminalReporter`] shows a run.
#[derive(Debug, Clone)]
pub struct TerminalOptions {
    /// A live progress display of running tasks (needs a terminal) instead of plain lines.
    pub live: bool,
    /// Show every task's output as it is printed, also in the live view.
    pub verbose: bool,
    /// How many of a failed task's last output lines to show.
    pub tail_lines: usize,
    /// The project's state directory (`.sykli`), to point at full logs.
    pub state_dir: PathBuf,
}

impl TerminalOptions {
    /// Live when stdout is a terminal that can draw (not `TERM=dumb`, not under `CI`), plain
    /// otherwise; 20 lines of failed output.
    pub fn detect(state_dir: impl Into<PathBuf>) -> Self {
        let term_ok = std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true);
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        TerminalOptions {
            live: io::stdout().is_terminal() && term_ok && !ci,
            verbose: false,
            tail_lines: 20,
            state_dir: state_dir.into(),
        }
    }
}

/// Shows a run to a person: which tasks run (a spinner with elapsed time on a terminal, a
/// `start`/`passed` line per task otherwise), task output as `[task] line` in plain mode, the
/// last lines of every failed task with the path of its full log, the detail line and, as the
/// very last line, `sykli: P passed, F failed, S skipped`.
///
/// Write errors (a closed pipe) are ignored: the run goes on.
pub struct TerminalReporter {
    inner: Mutex<Inner>,
}

struct Inner {
    opts: TerminalOptions,
    out: Box<dyn Write + Send>,
    live: Option<Live>,
    tails: Tails,
    run_id: String,
    failures: Vec<TaskReport>,
}

struct Live {
    multi: MultiProgress,
    total: ProgressBar,
    bars: HashMap<String, ProgressBar>,
    style: ProgressStyle,
}

impl TerminalReporter {
    /// A reporter writing to stdout.
    pub fn new(opts: TerminalOptions) -> Self {
        Self::with_writer(opts, Box::new(io::stdout()))
    }

    /// A reporter writing plain lines to `out` (the live view always draws on stdout).
    pub fn with_writer(opts: TerminalOptions, out: Box<dyn Write + Send>) -> Self {
        TerminalReporter {
            inner: Mutex::new(Inner {
                tails: Tails::new(opts.tail_lines),
                opts,
                out,
                live: None,
                run_id: String::new(),
                failures: Vec::new(),
            }),
        }
    }
}

impl EventSink for TerminalReporter {
    fn emit(&self, event: &Event) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.handle(event);
    }
}

fn status_style(status: TaskStatus) -> Style {
    match status {
        TaskStatus::Passed => Style::new().green().bold(),
        TaskStatus::Cached => Style::new().cyan().bold(),
        TaskStatus::Failed | TaskStatus::Errored => Style::new().red().bold(),
        TaskStatus::Blocked | TaskStatus::Skipped => Style::new().yellow(),
    }
}

/// One line for a finished task: `  passed build 1.2s`, `  failed test 0.3s exit 1: ...`.
fn finish_line(r: &TaskReport) -> String {
    let label = status_style(r.status).apply_to(format!("{:>8}", r.status.as_str()));
    let mut line = format!("{label} {}", style(&r.task).bold());
    if r.attempts > 0 {
        line.push(' ');
        line.push_str(&format_duration(Duration::from_millis(r.duration_ms)));
    }
    if r.attempts > 1 {
        line.push_str(&format!(" ({} attempts)", r.attempts));
    }
    match (r.status, r.exit_code, &r.message) {
        (TaskStatus::Failed, Some(code), Some(m)) if !m.starts_with("exited with code") => {
            line.push_str(&format!(" exit {code}: {m}"))
        }
        (TaskStatus::Failed, Some(code), _) => line.push_str(&format!(" exit {code}")),
        (_, _, Some(m)) => line.push_str(&format!(": {m}")),
        _ => {}
    }
    line
}

fn display_path(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
        .display()
        .to_string()
}

impl Inner {
    fn line(&mut self, text: &str) {
        match &self.live {
            Some(live) => {
                let _ = live.multi.println(text);
            }
            None => {
                let _ = writeln!(self.out, "{text}");
            }
        }
    }

    fn handle(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                run_id,
                tasks,
                jobs,
                ..
            } => {
                self.run_id = run_id.clone();
                if self.opts.live {
                    self.start_live(tasks.len() as u64);
                }
                let head = format!(
                    "{} {} tasks, {} at a time (run {run_id})",
                    style("sykli").bold(),
                    tasks.len(),
                    jobs
                );
                self.line(&head);
            }
            Event::TaskStarted {
                task,
                attempt,
                executor,
            } => {
                if let Some(live) = &mut self.live {
                    let bar = live.multi.insert_before(
                        &live.total,
                        ProgressBar::new_spinner().with_style(live.style.clone()),
                    );
                    bar.set_prefix(task.clone());
                    if *attempt > 1 {
                        bar.set_message(format!("attempt {attempt}"));
                    }
                    bar.enable_steady_tick(Duration::from_millis(100));
                    if let Some(old) = live.bars.insert(task.clone(), bar) {
                        old.finish_and_clear();
                        live.multi.remove(&old);
                    }
                } else {
                    let again = if *attempt > 1 {
                        format!(" (attempt {attempt})")
                    } else {
                        String::new()
                    };
                    let text = format!(
                        "{} {}{again} [{executor}]",
                        style(format!("{:>8}", "start")).dim(),
                        style(task).bold()
                    );
                    self.line(&text);
                }
            }
            // Shown by `sykli observe` and the web view; the local terminal keeps its lines.
            Event::TaskResources { .. } => {}
            Event::TaskOutput { task, line, .. } => {
                self.tails.push(task, line);
                match &self.live {
                    Some(live) => {
                        if let Some(bar) = live.bars.get(task) {
                            bar.set_message(line.chars().take(100).collect::<String>());
                        }
                        if self.opts.verbose {
                            let text = format!("{} {line}", style(format!("[{task}]")).dim());
                            self.line(&text);
                        }
                    }
                    None => {
                        let text = format!("{} {line}", style(format!("[{task}]")).dim());
                        self.line(&text);
                    }
                }
            }
            Event::TaskPlaced {
                task,
                executor,
                reason,
            } => {
                let text = format!(
                    "{} {} on {executor}: {reason}",
                    style(format!("{:>8}", "placed")).dim(),
                    style(task).bold(),
                );
                self.line(&text);
            }
            Event::TaskAttached {
                task,
                operation,
                reattached: true,
            } => {
                let text = format!(
                    "{} {}: re-attached to remote operation {operation}",
                    style(format!("{:>8}", "attach")).dim(),
                    style(task).bold(),
                );
                self.line(&text);
            }
            Event::TaskReattachFailed {
                task,
                operation,
                reason,
            } => {
                let text = format!(
                    "{} {}: cannot re-attach to remote operation {operation} ({reason}): \
                     executing it again",
                    style(format!("{:>8}", "rerun")).yellow(),
                    style(task).bold(),
                );
                self.line(&text);
            }
            Event::TaskRerun { task, reason } => {
                let text = format!(
                    "{} {}: {reason}",
                    style(format!("{:>8}", "rerun")).yellow(),
                    style(task).bold(),
                );
                self.line(&text);
            }
            Event::TaskCacheMiss { task, reason } => {
                if self.opts.verbose {
                    let text = format!(
                        "{} {}: {}",
                        style(format!("{:>8}", "miss")).dim(),
                        style(task).bold(),
                        reason.strip_prefix("cache miss: ").unwrap_or(reason)
                    );
                    self.line(&text);
                }
            }
            Event::TaskRetrying {
                task,
                attempt,
                delay_ms,
                reason,
            } => {
                let text = format!(
                    "{} {} attempt {attempt} failed ({reason}); retrying in {}",
                    style(format!("{:>8}", "retry")).yellow(),
                    style(task).bold(),
                    format_duration(Duration::from_millis(*delay_ms))
                );
                self.line(&text);
            }
            Event::TaskFinished(report) => {
                if let Some(live) = &mut self.live {
                    if let Some(bar) = live.bars.remove(&report.task) {
                        bar.finish_and_clear();
                        live.multi.remove(&bar);
                    }
                    live.total.inc(1);
                }
                let text = finish_line(report);
                self.line(&text);
                if matches!(report.status, TaskStatus::Failed | TaskStatus::Errored) {
                    self.failures.push(report.clone());
                } else {
                    self.tails.forget(&report.task);
                }
            }
            Event::RunFinished(summary) => self.finish(summary),
            Event::RunParked { waiting, .. } => {
                if let Some(live) = self.live.take() {
                    for bar in live.bars.values() {
                        bar.finish_and_clear();
                    }
                    live.total.finish_and_clear();
                    let _ = live.multi.clear();
                }
                let line = format!(
                    "{} waiting on {}",
                    style(format!("{:>8}", "parked")).yellow(),
                    waiting.join(", ")
                );
                self.line(&line);
            }
            // A fresh operation is not news to a reader.
            Event::TaskAttached {
                reattached: false, ..
            } => {}
        }
    }

    fn start_live(&mut self, total: u64) {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let total_bar = multi.add(
            ProgressBar::new(total).with_style(
                ProgressStyle::with_template("{elapsed:>4} [{bar:30.cyan/blue}] {pos}/{len} done")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
        );
        total_bar.enable_steady_tick(Duration::from_millis(200));
        let spinner = ProgressStyle::with_template(
            "{spinner:.cyan} {prefix:.bold} {elapsed:>4} {wide_msg:.dim}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        self.live = Some(Live {
            multi,
            total: total_bar,
            bars: HashMap::new(),
            style: spinner,
        });
    }

    fn finish(&mut self, summary: &RunSummary) {
        if let Some(live) = self.live.take() {
            for bar in live.bars.values() {
                bar.finish_and_clear();
            }
            live.total.finish_and_clear();
            let _ = live.multi.clear();
        }
        let failures = std::mem::take(&mut self.failures);
        for report in &failures {
            let (lines, total) = self.tails.get(&report.task);
            let head = format!(
                "\n{} {} {}",
                style("---").red(),
                status_style(report.status).apply_to(report.status.as_str()),
                style(&report.task).bold()
            );
            let mut block = vec![head];
            if let Some(m) = &report.message {
                block.push(format!("    {m}"));
            }
            if total > lines.len() as u64 {
                block.push(format!(
                    "    ... {} earlier lines not shown",
                    total - lines.len() as u64
                ));
            }
            for l in &lines {
                block.push(format!("    {l}"));
            }
            let log = state::log_path(&self.opts.state_dir, &self.run_id, &report.task);
            if report.attempts > 0 && log.is_file() {
                block.push(format!("    full log: {}", display_path(&log)));
            }
            for l in block {
                let _ = writeln!(self.out, "{l}");
            }
        }
        let _ = writeln!(self.out);
        if summary.interrupted {
            let _ = writeln!(self.out, "{}", style("interrupted").red().bold());
        }
        let _ = writeln!(self.out, "{}", detail_line(summary));
        let _ = writeln!(self.out, "{}", final_line(summary));
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use sykli_runtime::exec::OutputStream;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    fn report(task: &str, status: TaskStatus, exit: Option<i32>, msg: Option<&str>) -> Event {
        Event::TaskFinished(TaskReport {
            task: task.into(),
            status,
            exit_code: exit,
            duration_ms: 1200,
            attempts: u32::from(exit.is_some()),
            message: msg.map(str::to_string),
        })
    }

    fn events() -> Vec<Event> {
        let mut ev = vec![Event::RunStarted {
            plan_digest: None,
            resumed: false,
            run_id: "r1".into(),
            tasks: vec!["build".into(), "test".into(), "deploy".into()],
            jobs: 2,
            started_at_ms: 0,
        }];
        for t in ["build", "test"] {
            ev.push(Event::TaskStarted {
                task: t.into(),
                attempt: 1,
                executor: "process".into(),
            });
        }
        for i in 0..30 {
            ev.push(Event::TaskOutput {
                task: "test".into(),
                stream: OutputStream::Stderr,
                line: format!("line {i}"),
            });
        }
        ev.push(report("build", TaskStatus::Passed, Some(0), None));
        ev.push(report("test", TaskStatus::Failed, Some(3), None));
        ev.push(report(
            "deploy",
            TaskStatus::Blocked,
            None,
            Some("dependency `test` failed"),
        ));
        ev.push(Event::RunFinished(RunSummary {
            run_id: "r1".into(),
            passed: 1,
            cached: 0,
            failed: 1,
            errored: 0,
            blocked: 1,
            skipped: 0,
            duration_ms: 2500,
            interrupted: false,
        }));
        ev
    }

    #[test]
    fn plain_output_prefixes_lines_and_ends_with_the_summary() {
        console::set_colors_enabled(false);
        let buf = Buf::default();
        let state_dir = tempfile::tempdir().unwrap();
        let log = state::log_path(state_dir.path(), "r1", "test");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "full output\n").unwrap();
        let opts = TerminalOptions {
            live: false,
            verbose: false,
            tail_lines: 5,
            state_dir: state_dir.path().to_path_buf(),
        };
        let rep = TerminalReporter::with_writer(opts, Box::new(buf.clone()));
        for e in events() {
            rep.emit(&e);
        }
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("   start build [process]"), "{text}");
        assert!(text.contains("[test] line 0\n"), "{text}");
        assert!(text.contains("  passed build 1.2s\n"), "{text}");
        assert!(text.contains("  failed test 1.2s exit 3\n"), "{text}");
        assert!(text.contains(" blocked deploy: dependency `test` failed\n"));
        // The failure block: the last 5 lines and the log path.
        assert!(text.contains("... 25 earlier lines not shown"), "{text}");
        assert!(text.contains("    line 29\n"));
        let log = state_dir.path().join("logs/r1/test.log");
        assert!(
            text.contains(&format!("full log: {}", log.display())),
            "{text}"
        );
        // No file, no promise: `build` passed, and a failed task without a log gets no path.
        assert_eq!(text.matches("full log:").count(), 1, "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[lines.len() - 2],
            "1 passed, 1 failed, 0 errored, 1 blocked, 0 skipped in 2.5s"
        );
        assert_eq!(
            lines[lines.len() - 1],
            "sykli: 1 passed, 1 failed, 1 skipped"
        );
    }

    #[test]
    fn a_broken_pipe_does_not_panic() {
        let opts = TerminalOptions {
            live: false,
            verbose: false,
            tail_lines: 5,
            state_dir: PathBuf::from(".sykli"),
        };
        let rep = TerminalReporter::with_writer(opts, Box::new(Broken));
        for e in events() {
            rep.emit(&e);
        }
    }
}
