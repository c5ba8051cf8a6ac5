//! The durable queue of `sykli serve`: an append-only log (`pool-queue.log`, JSON lines)
//! under the store. An action is written (and fsynced) before its Execute is answered, and
//! marked done when its operation finishes; a restarted serve queues again every action not
//! marked done, under its old operation name, so clients find it with WaitExecution.
//!
//! Leases are not written: a restart ends every lease (its worker's result names a lease the
//! new serve never gave and is discarded), and the action is queued again. Actions with
//! secret values are never written (their values must not touch disk): after a restart their
//! operations are unknown, and the client's WaitExecution, answered NOT_FOUND, executes them
//! again. A `done` record is not fsynced: losing one only runs an action again.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The log's file name under the store.
pub const FILE_NAME: &str = "pool-queue.log";

/// One queued action as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// The operation id (`operations/{id}`).
    pub id: String,
    /// The REAPI digest function value.
    pub function: i32,
    /// The Action's hash (hex).
    pub hash: String,
    /// The Action's size.
    pub size: i64,
    /// Who asked (for fair sharing).
    pub client: String,
    /// Which attempt of its task the client said it is (1 in logs written before it was kept).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Queued(Queued),
    Done { id: String },
}

/// Why the log could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing it failed.
    #[error("failed to {action} the pool queue log {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The open log.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens the log in `dir`, returning it and the actions queued when it was last written
    /// (oldest first). The log is compacted to just those. A torn last line (a crash while
    /// writing it) is ignored: its Execute was never answered.
    pub fn open(dir: &Path) -> Result<(Journal, Vec<Queued>), JournalError> {
        let path = dir.join(FILE_NAME);
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| JournalError::Io {
                action,
                path,
                source,
            }
        };
        let mut pending: Vec<Queued> = Vec::new();
        match File::open(&path) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(io("read", &path))?;
                    match serde_json::from_str::<Record>(&line) {
                        Ok(Record::Queued(q)) => pending.push(q),
                        Ok(Record::Done { id }) => pending.retain(|q| q.id != id),
                        Err(_) => {}
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("open", &path)(e)),
        }
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        {
            let mut f = File::create(&tmp).map_err(io("write", &tmp))?;
            for q in &pending {
                let line = serde_json::to_string(&Record::Queued(q.clone()))
                    .map_err(|e| io("write", &tmp)(std::io::Error::other(e)))?;
                writeln!(f, "{line}").map_err(io("write", &tmp))?;
            }
            f.sync_all().map_err(io("sync", &tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io("replace", &path))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io("open", &path))?;
        Ok((Journal { file, path }, pending))
    }

    fn append(&mut self, record: &Record, sync: bool) -> Result<(), JournalError> {
        let err = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| JournalError::Io {
                action,
                path,
                source,
            }
        };
        let mut line = serde_json::to_string(record)
            .map_err(|e| err("write", &self.path)(std::io::Error::other(e)))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(err("write", &self.path))?;
        if sync {
            self.file.sync_data().map_err(err("sync", &self.path))?;
        }
        Ok(())
    }

    /// Writes a queued action and fsyncs.
    pub fn queued(&mut self, q: &Queued) -> Result<(), JournalError> {
        self.append(&Record::Queued(q.clone()), true)
    }

    /// Marks an action done (not fsynced).
    pub fn done(&mut self, id: &str) -> Result<(), JournalError> {
        self.append(&Record::Done { id: id.to_owned() }, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str) -> Queued {
        Queued {
            id: id.into(),
            function: 9,
            hash: "ab".into(),
            size: 3,
            client: "c".into(),
            attempt: 1,
        }
    }

    #[test]
    fn reopening_returns_what_is_not_done_and_ignores_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut j, pending) = Journal::open(dir.path()).unwrap();
            assert!(pending.is_empty());
            j.queued(&q("a")).unwrap();
            j.queued(&q("b")).unwrap();
            j.done("a").unwrap();
            j.file.write_all(b"{\"queued\":{\"id\":").unwrap();
        }
        let (_, pending) = Journal::open(dir.path()).unwrap();
        assert_eq!(pending, vec![q("b")]);
        let (_, again) = Journal::open(dir.path()).unwrap();
        assert_eq!(again, vec![q("b")]);
    }
}
