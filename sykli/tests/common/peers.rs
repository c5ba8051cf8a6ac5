//! Real Remote Execution API peers for the interop tests: BuildGrid cache-only, BuildGrid with
//! execution (a throwaway PostgreSQL cluster and the test bot `tests/peers/rwapi_bot.py`), and
//! Bazel on a genrule workspace. `.ci/reapi-peers.sh install` installs them; a missing one makes
//! the test fail with a message naming that command.
//!
//! Everything binds 127.0.0.1, every wait has a deadline, and each value stops what it started
//! when dropped (processes get a stop signal, then SIGKILL after a grace period; Bazel gets
//! `bazel shutdown`). Children also get SIGTERM if the thread that started them dies, so start
//! and drop a peer on the same thread (a test's own).

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bazel_remote_apis::build::bazel::remote::execution::v2::{
    GetCapabilitiesRequest, ServerCapabilities, capabilities_client::CapabilitiesClient,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What to run when a peer is missing.
pub const INSTALL: &str = "bash .ci/reapi-peers.sh install";

/// How long a peer may take to answer after it starts (generous: 2 cores shared by many).
const READY_WITHIN: Duration = Duration::from_secs(90);
/// How long a stopped process may take to exit before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

/// Where `.ci/reapi-peers.sh` installs BuildGrid's venv: `$SYKLI_PEERS_DIR`, else
/// `/var/cache/sykli-peers`.
pub fn peers_dir() -> PathBuf {
    std::env::var_os("SYKLI_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/sykli-peers"))
}

fn required(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} not found at {}: install the interop peers with `{INSTALL}` (as root)",
        path.display()
    );
    path
}

/// BuildGrid's `bgd` in the peers venv.
pub fn bgd() -> PathBuf {
    bgd_in(&peers_dir())
}

/// BuildGrid's `bgd` in the venv under `peers_dir`; panics naming the install command if it
/// is missing.
pub fn bgd_in(peers_dir: &Path) -> PathBuf {
    required(peers_dir.join("venv/bin/bgd"), "BuildGrid (bgd)")
}

/// The peers venv's Python (it has BuildGrid's generated protos, which the test bot uses).
pub fn venv_python() -> PathBuf {
    required(
        peers_dir().join("venv/bin/python"),
        "the BuildGrid venv's python",
    )
}

/// The `bazel` on PATH (Debian's `bazel-bootstrap`).
pub fn bazel_bin() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("bazel"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("bazel not found on PATH: install the interop peers with `{INSTALL}` (as root)")
    })
}

/// The newest PostgreSQL server's `bin` folder (`/usr/lib/postgresql/N/bin`).
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL server not found under /usr/lib/postgresql/*/bin: install the interop \
             peers with `{INSTALL}` (as root)"
        )
    })
}

/// A free TCP port on 127.0.0.1 (for servers that cannot bind port 0 and report it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// The test bot (Python, run in the peers venv).
pub const BOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/rwapi_bot.py");

/// The last `lines` lines of a log file, for failure messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"));
    tail_text(&text, lines)
}

/// The last `lines` lines of `text`.
pub fn tail_text(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A child process that is stopped (signal, grace period, SIGKILL) when dropped. Its stdout
/// and stderr go to one log file.
pub struct Process {
    name: String,
    child: Child,
    stop_signal: Signal,
    log: PathBuf,
}

impl Process {
    /// Starts `cmd` with its output in `log`; it gets SIGTERM if this thread dies first.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path, stop_signal: Signal) -> Process {
        let out = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log file handle");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {name} ({cmd:?}): {e}"));
        Process {
            name: name.to_string(),
            child,
            stop_signal,
            log: log.to_path_buf(),
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics with the end of its log if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); last log lines of {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log, 40)
            );
        }
    }

    /// Sends the stop signal and waits (bounded) for the exit; SIGKILL after the grace period.
    /// Returns how it exited.
    pub fn stop(&mut self) -> ExitStatus {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, self.stop_signal);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(POLL);
        }
        eprintln!(
            "{} did not stop within {STOP_GRACE:?} of {}; killing it",
            self.name, self.stop_signal
        );
        let _ = self.child.kill();
        self.child.wait().expect("wait for a killed child")
    }

    /// Waits (bounded) until its log contains `needle`.
    pub fn wait_for_log(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.log().contains(needle) {
                return;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "{} did not log {needle:?} within {within:?}; last log lines:\n{}",
                self.name,
                tail(&self.log, 40)
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `cmd` to its end within `within` (killed and reported otherwise); its output as text.
pub fn run_bounded(name: &str, cmd: Command, within: Duration) -> (ExitStatus, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("output.log");
    let mut process = Process::spawn(name, cmd, &log, Signal::SIGTERM);
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = process.child.try_wait() {
            return (status, process.log());
        }
        if Instant::now() >= deadline {
            process.stop();
            panic!(
                "{name} did not finish within {within:?}; its output:\n{}",
                process.log()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// GetCapabilities of the server at `addr` (one attempt, 2 s deadline). Runs its own runtime
/// on a scoped thread, so it may be called from sync tests and from inside a runtime alike.
pub fn capabilities(addr: SocketAddr) -> Result<ServerCapabilities, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("tokio runtime: {e}"))?;
                runtime.block_on(async {
                    let call = async {
                        let mut client = CapabilitiesClient::connect(format!("http://{addr}"))
                            .await
                            .map_err(|e| format!("connect {addr}: {e}"))?;
                        client
                            .get_capabilities(GetCapabilitiesRequest::default())
                            .await
                            .map(|r| r.into_inner())
                            .map_err(|s| format!("GetCapabilities on {addr}: {s}"))
                    };
                    tokio::time::timeout(Duration::from_secs(2), call)
                        .await
                        .map_err(|_| format!("GetCapabilities on {addr}: no answer within 2 s"))?
                })
            })
            .join()
            .map_err(|_| "capabilities thread panicked".to_string())?
    })
}

/// Waits (bounded) until `server` answers GetCapabilities at `addr`.
fn wait_for_capabilities(server: &mut Process, addr: SocketAddr) -> ServerCapabilities {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        server.assert_running();
        match capabilities(addr) {
            Ok(caps) => return caps,
            Err(e) if Instant::now() >= deadline => panic!(
                "{} did not answer GetCapabilities within {READY_WITHIN:?} ({e}); last log \
                 lines:\n{}",
                server.name,
                tail(&server.log, 40)
            ),
            Err(_) => std::thread::sleep(POLL * 2),
        }
    }
}

/// The YAML of a BuildGrid 0.9 server on `addr`: in-memory CAS, action cache and ByteStream
/// (Capabilities comes along), plus Execution/Operations/Bots with a PostgreSQL scheduler when
/// `postgres_url` is given.
fn buildgrid_config(addr: SocketAddr, postgres_url: Option<&str>) -> String {
    let mut yaml = format!(
        r#"description: sykli interop test BuildGrid on {addr}
server:
  - !channel
    address: "{addr}"
    insecure-mode: true
authorization:
  method: none
monitoring:
  enabled: false
"#
    );
    if let Some(url) = postgres_url {
        yaml.push_str(&format!(
            r#"connections:
  - !sql-connection &sql
    connection-string: {url}
    pool-size: 5
    pool-timeout: 30
    max-overflow: 10
"#
        ));
    }
    yaml.push_str(
        r#"storages:
  - !lru-storage &storage
    size: 256M
caches:
  - !lru-action-cache &action-cache
    storage: *storage
    max-cached-refs: 10000
    allow-updates: true
    cache-failed-actions: true
"#,
    );
    if postgres_url.is_some() {
        yaml.push_str(
            r#"schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    storage: *storage
    action-cache: *action-cache
    bot-session-keepalive-timeout: 60
    max-execution-timeout: 300
    property-set: !dynamic-property-set
      match-property-keys: []
      wildcard-property-keys: []
    assigners:
      - !priority-age-assigner
        count: 1
        interval: 0.1
        priority-assignment-percentage: 100
"#,
        );
    }
    yaml.push_str("instances:\n  - name: \"\"\n    services:\n");
    if postgres_url.is_some() {
        yaml.push_str(
            "      - !execution\n        scheduler: *scheduler\n        \
             operation-stream-keepalive-timeout: 60\n",
        );
    }
    yaml.push_str(
        r#"      - !action-cache
        cache: *action-cache
      - !cas
        storage: *storage
      - !bytestream
        storage: *storage
thread-pool-size: 10
"#,
    );
    yaml
}

/// A BuildGrid server on 127.0.0.1 (`bgd server start` with a generated config).
pub struct BuildGrid {
    server: Process,
    addr: SocketAddr,
    capabilities: ServerCapabilities,
    dir: tempfile::TempDir,
}

impl BuildGrid {
    /// BuildGrid as a cache only: CAS, action cache, ByteStream, Capabilities, all in memory.
    pub fn cache_only() -> BuildGrid {
        BuildGrid::start(None)
    }

    fn start(postgres_url: Option<&str>) -> BuildGrid {
        let bgd = bgd();
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = dir.path().join("buildgrid.yml");
        std::fs::write(&config, buildgrid_config(addr, postgres_url)).expect("write config");
        let mut cmd = Command::new(bgd);
        cmd.args(["server", "start"])
            .arg(&config)
            .current_dir(dir.path());
        let mut server = Process::spawn(
            "BuildGrid (bgd server)",
            cmd,
            &dir.path().join("bgd.log"),
            Signal::SIGTERM,
        );
        let capabilities = wait_for_capabilities(&mut server, addr);
        BuildGrid {
            server,
            addr,
            capabilities,
            dir,
        }
    }

    /// Its address (127.0.0.1:PORT).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its endpoint as Bazel and sykli write it: `grpc://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("grpc://{}", self.addr)
    }

    /// What it answered to the first GetCapabilities.
    pub fn capabilities(&self) -> &ServerCapabilities {
        &self.capabilities
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// Its scratch folder (config, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A throwaway PostgreSQL cluster on 127.0.0.1, run as user `postgres` (it refuses root),
/// trusting local connections, with BuildGrid's schema applied.
struct Postgres {
    server: Process,
    url: String,
    _dir: tempfile::TempDir,
}

impl Postgres {
    fn start() -> Postgres {
        let bin = postgres_bin();
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                panic!("no user `postgres` (the postgresql package makes it): run `{INSTALL}`")
            });
        let dir = tempfile::tempdir().expect("temp dir");
        nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid))
            .expect("chown the cluster folder to postgres");
        let data = dir.path().join("data");
        let as_postgres = |program: PathBuf| {
            let mut cmd = Command::new(program);
            cmd.uid(user.uid.as_raw())
                .gid(user.gid.as_raw())
                .current_dir(dir.path())
                .env("HOME", dir.path());
            cmd
        };
        let mut initdb = as_postgres(bin.join("initdb"));
        initdb
            .args(["-N", "-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data);
        let (status, output) = run_bounded("initdb", initdb, Duration::from_secs(60));
        assert!(status.success(), "initdb failed ({status}):\n{output}");

        let port = free_port();
        let mut postgres = as_postgres(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-c", "listen_addresses=127.0.0.1", "-p", &port.to_string()])
            .arg("-k")
            .arg(dir.path())
            .args(["-c", "fsync=off", "-c", "max_connections=50"]);
        // SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for clients).
        let mut server = Process::spawn(
            "PostgreSQL",
            postgres,
            &dir.path().join("postgres.log"),
            Signal::SIGINT,
        );
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            server.assert_running();
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections within {READY_WITHIN:?}; log:\n{}",
                tail(&dir.path().join("postgres.log"), 40)
            );
            std::thread::sleep(POLL);
        }
        let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres");
        let mut migrate = Command::new(bgd());
        migrate.args(["migrate", "apply", &url]);
        let (status, output) = run_bounded("bgd migrate apply", migrate, Duration::from_secs(120));
        assert!(
            status.success(),
            "bgd migrate apply {url} failed ({status}):\n{output}"
        );
        Postgres {
            server,
            url,
            _dir: dir,
        }
    }
}

/// BuildGrid with execution: a PostgreSQL scheduler, Execution/Operations/Bots besides the
/// cache services, and one test bot (`tests/peers/rwapi_bot.py`) running actions on this host.
/// Dropped in order: the bot (it leaves its session), BuildGrid, PostgreSQL.
pub struct BuildGridExecution {
    bot: Process,
    grid: BuildGrid,
    _postgres: Postgres,
}

impl BuildGridExecution {
    /// Starts PostgreSQL, BuildGrid and the bot, each ready before the next starts.
    pub fn start() -> BuildGridExecution {
        let python = venv_python();
        let postgres = Postgres::start();
        let grid = BuildGrid::start(Some(&postgres.url));
        // The bot advertises this host's platform, which sykli's actions name (BuildGrid
        // matches OSFamily and ISA: an action no bot matches stays queued).
        let (os, isa) = (
            sykli_runtime::cache::action::host_os_family(),
            sykli_runtime::cache::action::host_isa(),
        );
        let mut cmd = Command::new(python);
        cmd.arg(BOT)
            .args(["--remote", &grid.addr.to_string(), "--max-seconds", "600"])
            .args(["--property", &format!("OSFamily={os}")])
            .args(["--property", &format!("ISA={isa}")])
            .current_dir(grid.dir());
        let mut bot = Process::spawn(
            "the test bot (rwapi_bot.py)",
            cmd,
            &grid.dir().join("bot.log"),
            Signal::SIGTERM,
        );
        bot.wait_for_log("rwapi-bot: session ", READY_WITHIN);
        BuildGridExecution {
            bot,
            grid,
            _postgres: postgres,
        }
    }

    /// Like [`BuildGridExecution::start`], with a real `sykli worker --bot-of` as the bot
    /// (it offers this host's OSFamily and ISA itself).
    pub fn start_with_sykli_worker() -> BuildGridExecution {
        let postgres = Postgres::start();
        let grid = BuildGrid::start(Some(&postgres.url));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sykli"));
        cmd.args(["worker", "--listen", "127.0.0.1:0", "--store"])
            .arg(grid.dir().join("worker-store"))
            .args(["--bot-of", &grid.endpoint()])
            .env_remove("SYKLI_TOKEN")
            .current_dir(grid.dir());
        let mut bot = Process::spawn(
            "sykli worker --bot-of",
            cmd,
            &grid.dir().join("worker.log"),
            Signal::SIGTERM,
        );
        bot.wait_for_log("sykli worker: bot of ", READY_WITHIN);
        BuildGridExecution {
            bot,
            grid,
            _postgres: postgres,
        }
    }

    /// The BuildGrid server.
    pub fn grid(&self) -> &BuildGrid {
        &self.grid
    }

    /// Its endpoint: `grpc://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.grid.endpoint()
    }

    /// The bot's log so far (one `rwapi-bot: ran ...` line per action).
    pub fn bot_log(&self) -> String {
        self.bot.log()
    }

    /// Stops the bot now (it leaves its session); returns its log.
    pub fn stop_bot(&mut self) -> (ExitStatus, String) {
        let status = self.bot.stop();
        (status, self.bot.log())
    }
}

/// The genrule workspace fixture (`tests/peers/bazel-genrule`): `//:upper` upper-cases
/// `greeting.txt` and appends `salt.txt`; `//:report` counts `upper.txt`'s lines into
/// `report/summary.txt` and appends it.
pub const GENRULE_WORKSPACE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/bazel-genrule");

/// Bazel on a private copy of a workspace, with a private HOME and output root (so nothing is
/// shared with other tests or the user), a bounded idle time, and `bazel shutdown` on drop.
/// The system rc stays on: Debian's (`/etc/bazel/bazelrc`) sets the install base Bazel needs,
/// and `--sandbox_debug`, which the tests turn off.
pub struct Bazel {
    bazel: PathBuf,
    workspace: tempfile::TempDir,
    home: tempfile::TempDir,
}

/// What one Bazel command did.
pub struct BazelRun {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its stdout and stderr.
    pub output: String,
    /// How long it took.
    pub took: Duration,
}

impl Bazel {
    /// A copy of the genrule workspace whose `salt.txt` is `salt` (a fresh salt makes actions
    /// no server has seen).
    pub fn genrule_workspace(salt: &str) -> Bazel {
        let bazel = bazel_bin();
        let workspace = tempfile::tempdir().expect("temp dir");
        for entry in std::fs::read_dir(GENRULE_WORKSPACE).expect("read the workspace fixture") {
            let entry = entry.expect("fixture entry");
            std::fs::copy(entry.path(), workspace.path().join(entry.file_name()))
                .expect("copy the workspace fixture");
        }
        std::fs::write(workspace.path().join("salt.txt"), format!("{salt}\n")).expect("salt");
        Bazel {
            bazel,
            workspace,
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The workspace folder.
    pub fn workspace(&self) -> &Path {
        self.workspace.path()
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bazel);
        cmd.arg(format!(
            "--output_user_root={}",
            self.home.path().join("output-root").display()
        ))
        .args(["--max_idle_secs=60", "--nohome_rc", "--noworkspace_rc"])
        .current_dir(self.workspace.path())
        .env("HOME", self.home.path())
        .env_remove("BAZELISK_HOME")
        .env_remove("USE_BAZEL_VERSION");
        cmd
    }

    /// Runs `bazel ARGS` in the workspace, bounded by `within`.
    pub fn run(&self, args: &[&str], within: Duration) -> BazelRun {
        let mut cmd = self.command();
        cmd.args(args);
        let started = Instant::now();
        let (status, output) = run_bounded(&format!("bazel {}", args.join(" ")), cmd, within);
        BazelRun {
            status,
            output,
            took: started.elapsed(),
        }
    }

    /// The text of `bazel-bin/PATH`.
    pub fn output_file(&self, path: &str) -> String {
        let file = self.workspace.path().join("bazel-bin").join(path);
        let mut text = String::new();
        File::open(&file)
            .and_then(|mut f| f.read_to_string(&mut text))
            .unwrap_or_else(|e| panic!("read Bazel output {}: {e}", file.display()));
        text
    }
}

impl Drop for Bazel {
    fn drop(&mut self) {
        let mut cmd = self.command();
        cmd.arg("shutdown");
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("shutdown.log");
        let mut process = Process::spawn("bazel shutdown", cmd, &log, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = process.child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        eprintln!("bazel shutdown did not finish within 30 s (its server idles out in 60 s)");
    }
}

impl BazelRun {
    /// Panics with Bazel's output unless it succeeded.
    pub fn assert_success(&self) -> &BazelRun {
        assert!(
            self.status.success(),
            "bazel failed ({}):\n{}",
            self.status,
            self.output
        );
        self
    }

    /// The process summary's counts by kind: `INFO: 3 processes: 2 remote cache hit, 1
    /// internal.` gives `[("remote cache hit", 2), ("internal", 1)]`.
    pub fn processes(&self) -> Vec<(String, u32)> {
        let Some(line) = self
            .output
            .lines()
            .rev()
            .find(|l| l.starts_with("INFO: ") && l.contains(" processes"))
        else {
            return Vec::new();
        };
        let Some((_, kinds)) = line
            .split_once(':')
            .and_then(|(_, rest)| rest.split_once(':'))
        else {
            return Vec::new();
        };
        kinds
            .trim()
            .trim_end_matches('.')
            .split(',')
            .filter_map(|part| {
                let (count, kind) = part.trim().split_once(' ')?;
                Some((kind.to_string(), count.parse().ok()?))
            })
            .collect()
    }

    /// How many processes of `kind` (`remote`, `remote cache hit`, `internal`, ...) the summary
    /// counts; 0 if it names none.
    pub fn count(&self, kind: &str) -> u32 {
        self.processes()
            .into_iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |(_, n)| n)
    }
}
