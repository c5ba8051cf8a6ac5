//! The last lines of each task's output, kept in bounded memory for the failure report.

use std::collections::{HashMap, VecDeque};

/// Longest line kept (in bytes); longer lines are cut with a marker.
const MAX_LINE: usize = 2048;

/// The last `limit` lines of output per task.
#[derive(Debug)]
pub(crate) struct Tails {
    limit: usize,
    lines: HashMap<String, (VecDeque<String>, u64)>,
}

impl Tails {
    /// Keeps at most `limit` lines per task.
    pub(crate) fn new(limit: usize) -> Self {
        Tails {
            limit,
            lines: HashMap::new(),
        }
    }

    /// Records one line of `task`.
    pub(crate) fn push(&mut self, task: &str, line: &str) {
        if self.limit == 0 {
            return;
        }
        let entry = match self.lines.get_mut(task) {
            Some(e) => e,
            None => self.lines.entry(task.to_string()).or_default(),
        };
        if entry.0.len() == self.limit {
            entry.0.pop_front();
        }
        entry.0.push_back(Tails::cut(line));
        entry.1 += 1;
    }

    /// `line`, cut at the longest length kept (with a marker when cut).
    pub(crate) fn cut(line: &str) -> String {
        truncate(line)
    }

    /// Forgets a task's lines (it passed; they will not be shown).
    pub(crate) fn forget(&mut self, task: &str) {
        self.lines.remove(task);
    }

    /// The kept lines of `task` and how many lines it printed in all.
    pub(crate) fn get(&self, task: &str) -> (Vec<&str>, u64) {
        match self.lines.get(task) {
            Some((l, total)) => (l.iter().map(String::as_str).collect(), *total),
            None => (Vec::new(), 0),
        }
    }
}

fn truncate(line: &str) -> String {
    if line.len() <= MAX_LINE {
        return line.to_string();
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [... line cut]", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_lines() {
        let mut t = Tails::new(2);
        for l in ["a", "b", "c"] {
            t.push("x", l);
        }
        assert_eq!(t.get("x"), (vec!["b", "c"], 3));
        t.forget("x");
        assert_eq!(t.get("x"), (vec![], 0));
    }

    #[test]
    fn cuts_long_lines_on_a_char_boundary() {
        let mut t = Tails::new(1);
        t.push("x", &"é".repeat(3000));
        let (l, _) = t.get("x");
        assert!(l[0].ends_with("[... line cut]"));
        assert!(l[0].len() < 2100);
    }
}
