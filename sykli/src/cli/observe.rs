//! `sykli observe ADDR`, `sykli ps ADDR` and `sykli cancel ADDR RUN [TASK]`: clients of the
//! observe service (`sykli_runtime::observe::grpc`) that `sykli worker`, `sykli serve` and
//! `sykli run --serve ADDR` offer.
//!
//! `observe` follows one run's events: on a terminal a live view (tasks with status,
//! elapsed time, CPU and memory; the selected task's output; keys to select, follow,
//! cancel, quit), otherwise one line per event (`#SEQ KIND TASK: TEXT`). A dropped
//! connection is re-established and the stream resumed after the last event received, so
//! nothing is missed or shown twice.

use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use futures::StreamExt;
use sykli_runtime::events::{Envelope, Event, EventSink};
use sykli_runtime::observe::grpc::ObserveClient;
use sykli_runtime::observe::{Hub, RunInfo, RunState, TaskState};
use sykli_runtime::remote::auth::Token;
use sykli_runtime::remote::client::{ClientOptions, RemoteError};
use sykli_runtime::remote::endpoint::Endpoint;

use super::error::{CliError, EXIT_FAILED, EXIT_OK};
use super::print_out;
use crate::report::Envelope as JsonEnvelope;

/// How long `observe` keeps trying to reconnect without receiving anything.
const RECONNECT_FOR: Duration = Duration::from_secs(60);

/// How many times in a row `observe` reconnects without receiving an event in between.
const MAX_FLAPS: u32 = 50;

/// Where the observe service is.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server: grpc://HOST:PORT, grpcs://HOST:PORT, or HOST:PORT (plaintext).
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// Send this bearer token (else SYKLI_TOKEN when set).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// An extra root certificate (PEM) to trust for grpcs://.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

/// Arguments of `sykli observe`.
#[derive(Debug, Clone, Args)]
pub struct ObserveArgs {
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The run to follow [default: the newest unfinished one].
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Only this task's events (and the run's own).
    #[arg(long, value_name = "NAME")]
    pub task: Option<String>,
    /// Start at this sequence number [default: the run's first event].
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    pub from: u64,
    /// One line per event even on a terminal.
    #[arg(long)]
    pub plain: bool,
}

/// Arguments of `sykli ps`.
#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `sykli cancel`.
#[derive(Debug, Clone, Args)]
pub struct CancelArgs {
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The run.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Only this task (it is stopped and reported errored; the run goes on).
    #[arg(value_name = "TASK")]
    pub task: Option<String>,
}

/// The client options of `args`: the endpoint (`HOST:PORT` means `grpc://HOST:PORT`), the
/// token, the CA.
fn options(args: &ServerArgs) -> Result<ClientOptions, CliError> {
    let text = if args.addr.contains("://") {
        args.addr.clone()
    } else {
        format!("grpc://{}", args.addr)
    };
    let endpoint = Endpoint::parse(&text)
        .map_err(|e| CliError::usage("usage", anyhow!(e).context(format!("ADDR {}", args.addr))))?;
    let mut opts = ClientOptions::new(endpoint);
    opts.token =
        Token::load(args.token_file.as_deref()).map_err(|e| CliError::usage("usage", e))?;
    opts.tls_ca = args.tls_ca.clone();
    Ok(opts)
}

fn failed(e: RemoteError) -> CliError {
    CliError::failed("observe_failed", e)
}

/// Runs `sykli ps ADDR`.
pub fn ps_command(args: &PsArgs, json: bool) -> ExitCode {
    let result = (|| {
        let opts = options(&args.server)?;
        let rt = CliError::runtime(false)?;
        let (server, runs) = rt.block_on(async {
            let mut c = ObserveClient::connect(&opts).await.map_err(failed)?;
            c.list_runs().await.map_err(failed)
        })?;
        if json {
            print_out(
                &JsonEnvelope::success(serde_json::json!({ "server": server, "runs": runs }))
                    .to_line(),
            );
        } else {
            print_out(&ps_text(&server, &runs, sykli_runtime::events::now_ms()));
        }
        Ok::<_, CliError>(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(json),
    }
}

/// The table `sykli ps` prints.
fn ps_text(server: &str, runs: &[RunInfo], now_ms: u64) -> String {
    let mut out = format!("{server}: {} run(s)\n", runs.len());
    for r in runs {
        let end = r.finished_at_ms.unwrap_or(now_ms);
        let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        out.push_str(&format!(
            "RUN {}  {}  {}  {}\n",
            r.run_id,
            state_name(r.state),
            human_ms(end.saturating_sub(r.started_at_ms)),
            counts.join(", ")
        ));
        for t in &r.tasks {
            if matches!(t.state, TaskState::Pending) {
                continue;
            }
            out.push_str(&format!("  {}\n", task_row(t, now_ms)));
        }
    }
    out
}

fn state_name(s: RunState) -> &'static str {
    match s {
        RunState::Pending => "pending",
        RunState::Running => "running",
        RunState::Passed => "passed",
        RunState::Failed => "failed",
        RunState::Interrupted => "interrupted",
        RunState::Parked => "parked",
        RunState::Ended => "ended",
    }
}

fn task_state(s: TaskState) -> &'static str {
    match s {
        TaskState::Pending => "pending",
        TaskState::Running => "running",
        TaskState::Retrying => "retrying",
        TaskState::Done(s) => s.as_str(),
    }
}

/// One task's row: name, state, where, elapsed, CPU, memory.
fn task_row(t: &sykli_runtime::observe::TaskInfo, now_ms: u64) -> String {
    let elapsed = match (t.duration_ms, t.started_at_ms) {
        (Some(d), _) => human_ms(d),
        (None, Some(s)) => human_ms(now_ms.saturating_sub(s)),
        _ => "-".into(),
    };
    let place = match (&t.executor, &t.host) {
        (Some(e), Some(h)) => format!("{e}@{h}"),
        (Some(e), None) => e.clone(),
        (None, Some(h)) => h.clone(),
        (None, None) => "-".into(),
    };
    let cpu = t.cpu_percent.map_or("-".into(), |c| format!("{c:.0}%"));
    let mem = t.rss_bytes.map_or("-".into(), human_bytes);
    format!(
        "{:<24} {:<9} {:<16} {:>8} {:>6} {:>8}",
        t.name,
        task_state(t.state),
        place,
        elapsed,
        cpu,
        mem
    )
}

fn human_ms(ms: u64) -> String {
    crate::report::format_duration(Duration::from_millis(ms))
}

fn human_bytes(b: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if b as f64 >= 1024.0 * MIB {
        format!("{:.1}G", b as f64 / (1024.0 * MIB))
    } else {
        format!("{:.0}M", b as f64 / MIB)
    }
}

/// Runs `sykli cancel ADDR RUN [TASK]`.
pub fn cancel_command(args: &CancelArgs, json: bool) -> ExitCode {
    let result = (|| {
        let opts = options(&args.server)?;
        let rt = CliError::runtime(false)?;
        rt.block_on(async {
            let mut c = ObserveClient::connect(&opts).await.map_err(failed)?;
            c.cancel(&args.run, args.task.as_deref())
                .await
                .map_err(failed)
        })?;
        if json {
            print_out(
                &JsonEnvelope::success(serde_json::json!({
                    "run_id": args.run, "task": args.task, "cancelled": true
                }))
                .to_line(),
            );
        } else {
            match &args.task {
                Some(t) => eprintln!("cancelled task {t} of run {}", args.run),
                None => eprintln!("cancelled run {}", args.run),
            }
        }
        Ok::<_, CliError>(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(json),
    }
}

/// One line per event, for logs and tests: `#SEQ KIND TASK: TEXT`.
pub fn event_line(e: &Envelope) -> String {
    let kind = match &e.event {
        Event::RunStarted { .. } => "run_started",
        Event::TaskPlaced { .. } => "task_placed",
        Event::TaskStarted { .. } => "task_started",
        Event::TaskOutput { .. } => "task_output",
        Event::TaskResources { .. } => "task_resources",
        Event::TaskCacheMiss { .. } => "task_cache_miss",
        Event::TaskRerun { .. } => "task_rerun",
        Event::TaskRetrying { .. } => "task_retrying",
        Event::TaskAttached { .. } => "task_attached",
        Event::TaskReattachFailed { .. } => "task_reattach_failed",
        Event::TaskFinished(_) => "task_finished",
        Event::RunFinished(_) => "run_finished",
        Event::RunParked { .. } => "run_parked",
    };
    let text = match &e.event {
        Event::RunStarted { run_id, tasks, .. } => format!("{run_id} ({} tasks)", tasks.len()),
        Event::TaskPlaced {
            executor, reason, ..
        } => format!("on {executor}: {reason}"),
        Event::TaskStarted {
            attempt, executor, ..
        } => format!("attempt {attempt} on {executor}"),
        Event::TaskOutput { line, .. } => line.clone(),
        Event::TaskResources {
            cpu_percent,
            rss_bytes,
            ..
        } => format!("cpu {cpu_percent:.0}% rss {}", human_bytes(*rss_bytes)),
        Event::TaskCacheMiss { reason, .. } | Event::TaskRerun { reason, .. } => reason.clone(),
        Event::TaskRetrying {
            attempt, reason, ..
        } => format!("attempt {attempt} failed: {reason}"),
        Event::TaskAttached {
            operation,
            reattached,
            ..
        } => match reattached {
            true => format!("re-attached to operation {operation}"),
            false => format!("operation {operation}"),
        },
        Event::TaskReattachFailed {
            operation, reason, ..
        } => format!("operation {operation} is gone ({reason}); executing again"),
        Event::TaskFinished(r) => match &r.message {
            Some(m) => format!("{} in {}ms: {m}", r.status, r.duration_ms),
            None => format!("{} in {}ms", r.status, r.duration_ms),
        },
        Event::RunFinished(s) => crate::report::final_line(s),
        Event::RunParked { waiting, .. } => format!("waiting on {}", waiting.join(", ")),
    };
    match &e.task {
        Some(t) => format!("#{} {kind} {t}: {text}", e.seq),
        None => format!("#{} {kind}: {text}", e.seq),
    }
}

/// How the followed stream ended.
enum Followed {
    /// The run's last event arrived (or the stream ended after it).
    Ended,
    /// The user quit the live view.
    Quit,
}

/// Follows a run's events through reconnections, handing each to `on_event` once, in order.
/// `on_tick` runs about four times a second (the live view redraws and reads keys there);
/// returning `false` stops.
async fn follow(
    opts: &ClientOptions,
    args: &ObserveArgs,
    mut on_event: impl FnMut(&Envelope),
    mut on_tick: impl FnMut(&Option<String>) -> bool,
) -> Result<Followed, CliError> {
    let mut run = args.run.clone();
    let mut next = args.from.max(1);
    // When the connection was lost (None: it is up): reconnecting gives up after
    // RECONNECT_FOR from then.
    let mut lost_at: Option<Instant> = None;
    // Connections lost in a row with no event received in between.
    let mut flaps = 0u32;
    let mut attempt = 0u32;
    let mut client: Option<ObserveClient> = None;
    loop {
        if client.is_none() {
            match ObserveClient::connect(opts).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    if attempt == 0 || lost_at.is_some_and(|t| t.elapsed() > RECONNECT_FOR) {
                        return Err(failed(e));
                    }
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        let stream = match c
            .subscribe(run.as_deref(), args.task.as_deref(), next)
            .await
        {
            Ok(s) => s,
            Err(e)
                if retryable(&e)
                    && attempt > 0
                    && lost_at.is_none_or(|t| t.elapsed() < RECONNECT_FOR) =>
            {
                client = None;
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            Err(e) => return Err(failed(e)),
        };
        attempt = 1;
        lost_at = None;
        let mut stream = Box::pin(stream);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let broke = loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(e)) => {
                        if e.seq < next {
                            // Already shown (the server replayed from earlier): skip.
                            continue;
                        }
                        run.get_or_insert_with(|| e.run_id.clone());
                        next = e.seq + 1;
                        flaps = 0;
                        let end = matches!(e.event, Event::RunFinished(_) | Event::RunParked { .. });
                        on_event(&e);
                        if end {
                            return Ok(Followed::Ended);
                        }
                    }
                    Some(Err(s)) if retryable_status(&s) => break s,
                    Some(Err(s)) => {
                        return Err(CliError::failed(
                            "observe_failed",
                            anyhow!("{} ({:?})", s.message(), s.code())
                                .context(format!("the event stream from {} ended", opts.endpoint)),
                        ));
                    }
                    // The stream ended without the run's last event (a worker's run went
                    // idle, or the server stopped serving it).
                    None => return Ok(Followed::Ended),
                },
                _ = tick.tick() => {
                    if !on_tick(&run) {
                        return Ok(Followed::Quit);
                    }
                }
            }
        };
        let since = *lost_at.get_or_insert_with(Instant::now);
        flaps += 1;
        if since.elapsed() > RECONNECT_FOR || flaps > MAX_FLAPS {
            return Err(CliError::failed(
                "observe_failed",
                anyhow!("{} ({:?})", broke.message(), broke.code()).context(format!(
                    "lost {} and could not resume for {}s",
                    opts.endpoint,
                    RECONNECT_FOR.as_secs()
                )),
            ));
        }
        eprintln!(
            "sykli observe: connection lost ({}); resuming from #{next}",
            broke.message()
        );
        client = None;
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(5)).min(2_000))
}

fn retryable_status(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::Internal
            | tonic::Code::Cancelled
    )
}

fn retryable(e: &RemoteError) -> bool {
    match e {
        RemoteError::Connect { .. } => true,
        RemoteError::Rpc { code, .. } => matches!(
            code,
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ),
        _ => false,
    }
}

/// Runs `sykli observe ADDR`.
pub fn observe_command(args: &ObserveArgs, json: bool) -> ExitCode {
    let result = (|| {
        let opts = options(&args.server)?;
        let rt = CliError::runtime(false)?;
        let live = !json && !args.plain && std::io::stdout().is_terminal();
        rt.block_on(async {
            if json {
                let mut events = Vec::new();
                let mut outcome = None;
                follow(
                    &opts,
                    args,
                    |e| {
                        if let Event::RunFinished(s) = &e.event {
                            outcome = Some(s.ok());
                        }
                        events.push(e.clone());
                    },
                    |_| true,
                )
                .await?;
                print_out(
                    &JsonEnvelope::success(serde_json::json!({
                        "run_id": events.first().map(|e| e.run_id.clone()),
                        "events": events,
                    }))
                    .to_line(),
                );
                Ok(outcome)
            } else if live {
                live_view(&opts, args).await
            } else {
                let mut outcome = None;
                follow(
                    &opts,
                    args,
                    |e| {
                        if let Event::RunFinished(s) = &e.event {
                            outcome = Some(s.ok());
                        }
                        print_out(&format!("{}\n", event_line(e)));
                    },
                    |_| true,
                )
                .await?;
                Ok(outcome)
            }
        })
    })();
    match result {
        Ok(Some(false)) => ExitCode::from(EXIT_FAILED),
        Ok(_) => ExitCode::from(EXIT_OK),
        Err(e) => e.report(json),
    }
}

/// What the live view shows.
struct View {
    /// The run's state, folded by a hub of our own from the events received.
    hub: Hub,
    sink: Option<sykli_runtime::observe::RunHandle>,
    /// Last lines of each task's output.
    output: BTreeMap<String, VecDeque<String>>,
    selected: usize,
    follow: bool,
    status: String,
}

const KEPT_LINES: usize = 500;

impl View {
    fn event(&mut self, e: &Envelope) {
        let sink = self
            .sink
            .get_or_insert_with(|| self.hub.register(&e.run_id));
        sink.emit_envelope(e);
        if let Event::TaskOutput { task, line, .. } = &e.event {
            let lines = self.output.entry(task.clone()).or_default();
            lines.push_back(line.clone());
            if lines.len() > KEPT_LINES {
                lines.pop_front();
            }
        }
    }

    fn draw(&self) -> String {
        let now = sykli_runtime::events::now_ms();
        let (rows, cols) = console::Term::stdout().size();
        let (rows, cols) = (rows as usize, cols as usize);
        let Some(info) = self
            .sink
            .as_ref()
            .and_then(|s| self.hub.run(s.run_id()).ok())
        else {
            return "waiting for the run's first event...\n".into();
        };
        let mut out = String::from("\x1b[H\x1b[2J");
        let end = info.finished_at_ms.unwrap_or(now);
        out.push_str(&format!(
            "run {}  {}  {}\n",
            info.run_id,
            state_name(info.state),
            human_ms(end.saturating_sub(info.started_at_ms))
        ));
        out.push_str(&format!(
            "  {:<24} {:<9} {:<16} {:>8} {:>6} {:>8}\n",
            "TASK", "STATE", "WHERE", "ELAPSED", "CPU", "MEM"
        ));
        let table = rows.saturating_sub(4).min(info.tasks.len()).max(1);
        let first = self.selected.saturating_sub(table.saturating_sub(1));
        for (i, t) in info.tasks.iter().enumerate().skip(first).take(table) {
            let mark = if i == self.selected { '>' } else { ' ' };
            let mut row = format!("{mark} {}", task_row(t, now));
            row.truncate(cols.max(20));
            out.push_str(&row);
            out.push('\n');
        }
        if self.follow
            && let Some(t) = info.tasks.get(self.selected)
        {
            let room = rows.saturating_sub(table + 4).max(3);
            out.push_str(&format!("--- {} ---\n", t.name));
            if let Some(lines) = self.output.get(&t.name) {
                for l in lines.iter().skip(lines.len().saturating_sub(room)) {
                    let mut l = l.clone();
                    l.truncate(cols.max(20));
                    out.push_str(&l);
                    out.push('\n');
                }
            }
        }
        out.push_str(&format!(
            "[up/down] select  [enter/f] follow log  [c] cancel task  [q] quit  {}\n",
            self.status
        ));
        out
    }
}

/// The live terminal view: redraws four times a second; keys arrive from a thread reading
/// the terminal.
async fn live_view(opts: &ClientOptions, args: &ObserveArgs) -> Result<Option<bool>, CliError> {
    let (keys_tx, keys_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let term = console::Term::stdout();
        while let Ok(k) = term.read_key() {
            if keys_tx.send(k).is_err() {
                break;
            }
        }
    });
    let view = std::cell::RefCell::new(View {
        hub: Hub::new(),
        sink: None,
        output: BTreeMap::new(),
        selected: 0,
        follow: false,
        status: String::new(),
    });
    let mut outcome = None;
    let status = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let result = follow(
        opts,
        args,
        |e| {
            if let Event::RunFinished(s) = &e.event {
                outcome = Some(s.ok());
            }
            view.borrow_mut().event(e);
        },
        |run| {
            let mut v = view.borrow_mut();
            let tasks: Vec<String> = v
                .sink
                .as_ref()
                .and_then(|s| v.hub.run(s.run_id()).ok())
                .map(|i| i.tasks.into_iter().map(|t| t.name).collect())
                .unwrap_or_default();
            while let Ok(k) = keys_rx.try_recv() {
                use console::Key;
                match k {
                    Key::ArrowUp | Key::Char('k') => v.selected = v.selected.saturating_sub(1),
                    Key::ArrowDown | Key::Char('j') => {
                        v.selected = (v.selected + 1).min(tasks.len().saturating_sub(1))
                    }
                    Key::Enter | Key::Char('f') => v.follow = !v.follow,
                    Key::Char('c') => {
                        if let (Some(r), Some(t)) = (run.clone(), tasks.get(v.selected).cloned()) {
                            *status.lock().unwrap_or_else(|p| p.into_inner()) =
                                format!("cancelling {t}...");
                            // On a connection of its own, beside the stream.
                            let (opts, status) = (opts.clone(), status.clone());
                            tokio::spawn(async move {
                                let said = match ObserveClient::connect(&opts).await {
                                    Ok(mut c) => match c.cancel(&r, Some(&t)).await {
                                        Ok(()) => format!("cancelled {t}"),
                                        Err(e) => sykli_runtime::error_chain(&e),
                                    },
                                    Err(e) => sykli_runtime::error_chain(&e),
                                };
                                *status.lock().unwrap_or_else(|p| p.into_inner()) = said;
                            });
                        }
                    }
                    Key::Char('q') | Key::Escape => return false,
                    _ => {}
                }
            }
            v.status = status.lock().unwrap_or_else(|p| p.into_inner()).clone();
            print_out(&v.draw());
            true
        },
    )
    .await;
    print_out(&view.borrow().draw());
    match result? {
        Followed::Ended | Followed::Quit => Ok(outcome),
    }
}

/// `sykli run --serve ADDR`: the run's events served on ADDR while it runs.
pub(crate) struct Serving {
    hub: Hub,
    server: sykli_runtime::observe::grpc::ServerThread,
}

/// How long a finished run keeps serving so observers read its last events.
const DRAIN: Duration = Duration::from_secs(5);

/// How long a finished run that had observers waits for one to reconnect.
const LINGER: Duration = Duration::from_secs(1);

/// The address `--serve` means: `HOST:PORT`, or a bare `PORT` on 127.0.0.1.
fn serve_addr(text: &str) -> Result<std::net::SocketAddr, CliError> {
    let text = text.trim();
    let full = if text.parse::<u16>().is_ok() {
        format!("127.0.0.1:{text}")
    } else {
        text.to_owned()
    };
    full.parse().map_err(|_| {
        CliError::usage(
            "usage",
            anyhow!("--serve {text}: expected HOST:PORT (an IP address) or a port on 127.0.0.1"),
        )
    })
}

/// Binds `addr` and serves the observe service for `config`'s run (on a thread of its own):
/// returns the sink to add to the run's sinks (cancel requests reach the run's token and its
/// tasks' tokens).
pub(crate) fn serve_run(
    addr: &str,
    config: &sykli_runtime::scheduler::RunConfig,
    json: bool,
) -> Result<(std::sync::Arc<dyn EventSink>, Serving), CliError> {
    let addr = serve_addr(addr)?;
    let token = Token::load(None).map_err(|e| CliError::usage("usage", e))?;
    let listen_err = |e: std::io::Error| {
        CliError::failed(
            "run_failed",
            anyhow!(e).context(format!("--serve: failed to listen on {addr}")),
        )
    };
    let listener = std::net::TcpListener::bind(addr).map_err(listen_err)?;
    let hub = Hub::new();
    let handle = hub.register(&config.run_id);
    handle.cancel_with(config.cancel.clone(), config.task_cancels.clone());
    let server = sykli_runtime::observe::grpc::ServerThread::spawn(listener, hub.clone(), token)
        .map_err(listen_err)?;
    let bound = server.local_addr();
    if !json {
        eprintln!(
            "serving run {} on grpc://{bound} (sykli observe grpc://{bound})",
            config.run_id
        );
    } else {
        eprintln!("serving on grpc://{bound}");
    }
    Ok((std::sync::Arc::new(handle), Serving { hub, server }))
}

impl Serving {
    /// Stops serving once observers have read the end (at most a few seconds).
    pub(crate) async fn stop(self) {
        // Observers still reading get the end; one that lost its connection gets a moment
        // to come back for it (bounded).
        if self.hub.observers().1 > 0 {
            let until = tokio::time::Instant::now() + DRAIN;
            let mut quiet_since = tokio::time::Instant::now();
            while tokio::time::Instant::now() < until {
                if self.hub.observers().0 > 0 {
                    quiet_since = tokio::time::Instant::now();
                } else if quiet_since.elapsed() >= LINGER {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if let Err(e) = self.server.stop(DRAIN).await {
            eprintln!("warning: --serve: the observe server failed: {e}");
        }
    }
}
