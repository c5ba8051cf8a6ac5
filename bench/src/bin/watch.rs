//! `sykli watch` latency: the time from a file write to the affected task starting, through
//! the real binary. The task records its own start (`date +%s%N`); the write's time is taken
//! just before the write. Prints every round and the median. Target: < 200 ms.
//!
//! `cargo build --release -p sykli -p sykli-bench`, then `target/release/watch [ROUNDS]
//! [DEBOUNCE]` (defaults 20, `50ms`). The `sykli` binary is taken from `$SYKLI_BIN`, else from
//! next to this benchmark's executable.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use sykli_bench::sykli_bin;

const DEADLINE: Duration = Duration::from_secs(30);

/// Waits (bounded) for a line of `lines` containing `needle`.
fn wait_line(lines: &Receiver<String>, needle: &str) -> Result<()> {
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return Ok(()),
            Ok(_) => {}
            Err(_) => bail!("`sykli watch` printed no {needle:?} within {DEADLINE:?}"),
        }
    }
}

/// The start times (ns since the epoch) the task recorded so far.
fn starts(dir: &Path) -> Vec<u128> {
    std::fs::read_to_string(dir.join("out/a"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn now_ns() -> Result<u128> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(Ok(20), |a| a.parse())?;
    let debounce = args.next().unwrap_or_else(|| "50ms".to_owned());
    let sykli = sykli_bin()?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let graph = serde_json::json!({"version": "1", "tasks": [
        {"name": "a", "inputs": ["a/*.txt"], "command": "mkdir -p out && date +%s%N >> out/a"},
        {"name": "b", "inputs": ["b/*.txt"], "command": "true"},
    ]});
    std::fs::write(dir.join("sykli.json"), graph.to_string())?;
    std::fs::write(dir.join(".gitignore"), "out/\n")?;
    std::fs::create_dir_all(dir.join("a"))?;
    std::fs::write(dir.join("a/one.txt"), "0\n")?;

    let mut child: Child = Command::new(&sykli)
        .args(["watch", "--debounce", &debounce])
        .current_dir(dir)
        .env("SYKLI_CACHE_DIR", dir.join("out/cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to start {}", sykli.display()))?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let result = (|| -> Result<Vec<f64>> {
        wait_line(&lines, "watch: watching")?;
        let mut ms = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let written = now_ns()?;
            std::fs::write(dir.join("a/one.txt"), format!("{round}\n"))?;
            wait_line(&lines, "watch: run finished")?;
            let all = starts(dir);
            let Some(&started) = all.get(round) else {
                bail!("round {round}: the task did not record its start");
            };
            let latency = (started.saturating_sub(written)) as f64 / 1e6;
            println!("round {round}: {latency:.1} ms");
            ms.push(latency);
        }
        Ok(ms)
    })();
    let _ = child.kill();
    let _ = child.wait();
    let mut ms = result?;
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    println!(
        "write -> affected task started, debounce {debounce}, {rounds} rounds: median {median:.1} ms (min {:.1}, max {:.1}); target < 200 ms",
        ms[0],
        ms[ms.len() - 1]
    );
    Ok(())
}
