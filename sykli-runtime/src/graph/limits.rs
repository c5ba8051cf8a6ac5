//! Limits on what a graph document can make sykli allocate or do.
//!
//! A document is untrusted input: a 600-byte matrix can ask for a billion tasks. Every limit
//! here is checked BEFORE the work it bounds, with overflow-safe arithmetic, and its error
//! names what is at fault and the number found. The same limits apply to every way a graph
//! comes in: a JSON file, an SDK program's output and the in-process Rust builder (which skips
//! only the text limits: it has no text).
//!
//! - Text limits ([`Limits::check_text`], run by [`super::Graph::from_json`]): document size,
//!   nesting depth, string length.
//! - Graph limits ([`Limits::check_graph`], run first by [`super::validate()`]): task names,
//!   matrix combinations per task, tasks and edges after matrix expansion, and what matrix
//!   expansion may add (tasks, edges, bytes). They are computed without expanding.
//!
//! The defaults and their errors are listed in `docs/graph-format.md` ("Limits").

use std::collections::HashMap;

use super::error::ValidationError;
use super::model::{Graph, Task};

/// The limits a graph is checked against. [`Limits::default`] is what `sykli` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of JSON text: a `sykli.json` file or an SDK program's output.
    pub max_document_bytes: usize,
    /// How deep arrays and objects may nest.
    pub max_depth: usize,
    /// Bytes of any one JSON string (key or value), as written (escapes included).
    pub max_string_bytes: usize,
    /// Bytes of a task name, matrix expansions' names and matrix dimension names included.
    pub max_name_bytes: usize,
    /// Tasks after matrix expansion.
    pub max_tasks: usize,
    /// Dependency edges after matrix expansion (`depends_on`, `task_inputs` and `needs`
    /// entries, counted before deduplication).
    pub max_edges: usize,
    /// Combinations of one task's matrix.
    pub max_matrix_combinations: u64,
    /// Tasks produced by all matrices of the document together.
    pub max_matrix_tasks: usize,
    /// Dependency edges produced by matrix expansion (an edge to a matrix task becomes one
    /// per expansion; an expansion repeats its task's edges).
    pub max_matrix_edges: usize,
    /// Bytes of JSON that matrix expansion produces: each expansion's copy of its task, and
    /// the names and `task_inputs` entries repeated for dependents of matrix tasks.
    pub max_matrix_bytes: usize,
}

impl Limits {
    /// The limits `sykli` applies to every graph.
    pub const DEFAULT: Limits = Limits {
        max_document_bytes: 64 << 20,
        max_depth: 64,
        max_string_bytes: 1 << 20,
        max_name_bytes: 256,
        max_tasks: 1_000_000,
        max_edges: 10_000_000,
        max_matrix_combinations: 256,
        max_matrix_tasks: 4_096,
        max_matrix_edges: 65_536,
        max_matrix_bytes: 16 << 20,
    };

    /// No limits at all: for benchmarks and trusted in-memory graphs only.
    pub const UNLIMITED: Limits = Limits {
        max_document_bytes: usize::MAX,
        max_depth: usize::MAX,
        max_string_bytes: usize::MAX,
        max_name_bytes: usize::MAX,
        max_tasks: usize::MAX,
        max_edges: usize::MAX,
        max_matrix_combinations: u64::MAX,
        max_matrix_tasks: usize::MAX,
        max_matrix_edges: usize::MAX,
        max_matrix_bytes: usize::MAX,
    };

    /// Checks a JSON text before parsing, in one pass without allocating: its size, how deep
    /// it nests and how long its strings are. Malformed JSON passes (the parser reports it).
    pub fn check_text(&self, text: &str) -> Result<(), TextLimitError> {
        if text.len() > self.max_document_bytes {
            return Err(TextLimitError::TooLarge {
                bytes: text.len(),
                limit: self.max_document_bytes,
            });
        }
        let b = text.as_bytes();
        let (mut depth, mut line, mut line_start, mut i) = (0usize, 1usize, 0usize, 0usize);
        let at = |i: usize, line: usize, line_start: usize| Position {
            line,
            column: text[line_start..i].chars().count() + 1,
        };
        while i < b.len() {
            match b[i] {
                b'"' => {
                    let start = i;
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    let bytes = i.min(b.len()) - start - 1;
                    if bytes > self.max_string_bytes {
                        return Err(TextLimitError::StringTooLong {
                            at: at(start, line, line_start),
                            bytes,
                            limit: self.max_string_bytes,
                        });
                    }
                }
                b'[' | b'{' => {
                    depth += 1;
                    if depth > self.max_depth {
                        return Err(TextLimitError::TooDeep {
                            at: at(i, line, line_start),
                            limit: self.max_depth,
                        });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b'\n' => {
                    line += 1;
                    line_start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        Ok(())
    }

    /// Checks what a graph would make validation and matrix expansion allocate, without
    /// expanding anything. Every limit exceeded is reported.
    pub fn check_graph(&self, g: &Graph) -> Vec<ValidationError> {
        let mut errors = Vec::new();
        // Task names and matrices, per task.
        let mut combos: HashMap<&str, u64> = HashMap::new();
        let mut name_bound: HashMap<&str, usize> = HashMap::new();
        let mut matrix_ok = true;
        for t in &g.tasks {
            if t.name.len() > self.max_name_bytes {
                errors.push(ValidationError::NameTooLong {
                    task: shorten(&t.name),
                    what: "a name",
                    bytes: t.name.len(),
                    limit: self.max_name_bytes,
                });
                matrix_ok = false;
                continue;
            }
            if t.matrix.is_empty() {
                continue;
            }
            if let Some(key) = t.matrix.keys().find(|k| k.len() > self.max_name_bytes) {
                errors.push(ValidationError::NameTooLong {
                    task: t.name.clone(),
                    what: "a matrix dimension name",
                    bytes: key.len(),
                    limit: self.max_name_bytes,
                });
                matrix_ok = false;
                continue;
            }
            match combination_count(t) {
                Some(n) if n <= u128::from(self.max_matrix_combinations) => {
                    // Fits in u64: the limit is a u64.
                    combos.insert(&t.name, n as u64);
                }
                n => {
                    errors.push(ValidationError::MatrixTooLarge {
                        task: t.name.clone(),
                        combinations: n,
                        dimensions: t.matrix.len(),
                        limit: self.max_matrix_combinations,
                    });
                    matrix_ok = false;
                    continue;
                }
            }
            // The longest expansion name: the name, then "-<value>" per dimension.
            let longest = t.matrix.values().fold(t.name.len(), |acc, vals| {
                acc.saturating_add(1)
                    .saturating_add(vals.iter().map(String::len).max().unwrap_or(0))
            });
            if longest > self.max_name_bytes {
                errors.push(ValidationError::NameTooLong {
                    task: t.name.clone(),
                    what: "matrix expansion names",
                    bytes: longest,
                    limit: self.max_name_bytes,
                });
                matrix_ok = false;
                continue;
            }
            name_bound.insert(&t.name, longest);
        }
        if !matrix_ok {
            return errors;
        }
        if combos.is_empty() {
            // No expansion: the counts are the document's own.
            let edges: usize = g
                .tasks
                .iter()
                .map(|t| t.depends_on.len() + t.task_inputs.len() + t.needs.len())
                .sum();
            if g.tasks.len() > self.max_tasks {
                errors.push(ValidationError::TooManyTasks {
                    count: g.tasks.len() as u64,
                    limit: self.max_tasks,
                });
            }
            if edges > self.max_edges {
                errors.push(ValidationError::TooManyEdges {
                    count: edges as u64,
                    limit: self.max_edges,
                });
            }
            return errors;
        }

        // Tasks and edges after expansion, in u128 so no sum can overflow.
        let providers: HashMap<&str, Vec<&str>> = {
            let mut m: HashMap<&str, Vec<&str>> = HashMap::new();
            for t in &g.tasks {
                for p in &t.provides {
                    m.entry(p.name.as_str()).or_default().push(&t.name);
                }
            }
            m
        };
        let copies = |name: &str| u128::from(combos.get(name).copied().unwrap_or(1));
        let (mut tasks, mut matrix_tasks) = (0u128, 0u128);
        let (mut edges, mut matrix_edges, mut matrix_bytes) = (0u128, 0u128, 0u128);
        let mut worst: Option<(&str, u128)> = None;
        for t in &g.tasks {
            let own = copies(&t.name);
            tasks += own;
            let mut t_edges = 0u128;
            let mut t_bytes = 0u128;
            let mut edge_to = |dep: &str, extra_bytes: usize| {
                let n = copies(dep);
                t_edges += n;
                if n > 1 {
                    let name = name_bound.get(dep).copied().unwrap_or(0);
                    t_bytes += n * (name as u128 + extra_bytes as u128 + 4);
                }
            };
            for d in &t.depends_on {
                edge_to(d, 0);
            }
            for i in &t.task_inputs {
                edge_to(&i.from_task, i.dest.len() + i.output.len() + 48);
            }
            for need in &t.needs {
                // Several providers are a validation error: count the first.
                if let Some(p) = providers.get(need.as_str()).and_then(|l| l.first()) {
                    edge_to(p, 0);
                }
            }
            edges += own * t_edges;
            let plain_edges = (t.depends_on.len() + t.task_inputs.len() + t.needs.len()) as u128;
            let added = (own * t_edges).saturating_sub(plain_edges);
            matrix_edges += added;
            if added > 0 && worst.is_none_or(|(_, w)| added > w) {
                worst = Some((&t.name, added));
            }
            matrix_bytes += own * t_bytes;
            if own > 1 {
                matrix_tasks += own;
                matrix_bytes += own * json_size(t) as u128;
            }
        }
        let over = |n: u128, limit: usize| n > limit as u128;
        let count = |n: u128| u64::try_from(n).unwrap_or(u64::MAX);
        if over(tasks, self.max_tasks) {
            errors.push(ValidationError::TooManyTasks {
                count: count(tasks),
                limit: self.max_tasks,
            });
        }
        if over(edges, self.max_edges) {
            errors.push(ValidationError::TooManyEdges {
                count: count(edges),
                limit: self.max_edges,
            });
        }
        if over(matrix_tasks, self.max_matrix_tasks) {
            errors.push(ValidationError::MatrixLimit {
                what: "tasks",
                count: count(matrix_tasks),
                limit: self.max_matrix_tasks,
                worst: None,
            });
        }
        if over(matrix_edges, self.max_matrix_edges) {
            errors.push(ValidationError::MatrixLimit {
                what: "dependency edges",
                count: count(matrix_edges),
                limit: self.max_matrix_edges,
                worst: worst.map(|(n, c)| (n.to_string(), count(c))),
            });
        }
        if over(matrix_bytes, self.max_matrix_bytes) {
            errors.push(ValidationError::MatrixLimit {
                what: "bytes of tasks",
                count: count(matrix_bytes),
                limit: self.max_matrix_bytes,
                worst: None,
            });
        }
        errors
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// The number of combinations of `task`'s matrix, without expanding it: the product of the
/// dimensions' value counts (1 for no matrix), or `None` when it exceeds `u128::MAX`.
pub fn combination_count(task: &Task) -> Option<u128> {
    task.matrix
        .values()
        .try_fold(1u128, |acc, v| acc.checked_mul(v.len() as u128))
}

/// The length of `task` as compact JSON, counted without building the text.
fn json_size(task: &Task) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing a task to a counter cannot fail: its maps have string keys.
    let _ = serde_json::to_writer(&mut c, task);
    c.0
}

/// A name cut to at most 40 characters for a message, with `...` when cut.
fn shorten(name: &str) -> String {
    match name.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &name[..i]),
        None => name.to_string(),
    }
}

/// A line and column (1-based, in characters) in a JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// A JSON text over one of the text limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextLimitError {
    /// The document is too large.
    #[error("the document is {bytes} bytes; the limit is {limit}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// [`Limits::max_document_bytes`].
        limit: usize,
    },
    /// Arrays and objects nest too deep.
    #[error(
        "arrays and objects nest deeper than {limit} levels at line {} column {}",
        .at.line,
        .at.column
    )]
    TooDeep {
        /// Where the nesting goes over the limit.
        at: Position,
        /// [`Limits::max_depth`].
        limit: usize,
    },
    /// A string is too long.
    #[error(
        "the string at line {} column {} is {bytes} bytes; the limit is {limit}",
        .at.line,
        .at.column
    )]
    StringTooLong {
        /// Where the string starts.
        at: Position,
        /// Its length as written.
        bytes: usize,
        /// [`Limits::max_string_bytes`].
        limit: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(json: &str) -> Graph {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn text_limits() {
        let l = Limits {
            max_document_bytes: 100,
            max_depth: 3,
            max_string_bytes: 5,
            ..Limits::DEFAULT
        };
        assert_eq!(l.check_text(r#"{"a": [["\"x"]]}"#), Ok(()));
        assert_eq!(
            l.check_text(&" ".repeat(101)).unwrap_err().to_string(),
            "the document is 101 bytes; the limit is 100"
        );
        assert_eq!(
            l.check_text("{\n \"a\": [[[1]]]}").unwrap_err().to_string(),
            "arrays and objects nest deeper than 3 levels at line 2 column 9"
        );
        assert_eq!(
            l.check_text("[\"é\", \"abcdef\"]").unwrap_err().to_string(),
            "the string at line 1 column 7 is 6 bytes; the limit is 5"
        );
        // Brackets inside strings do not nest; an unterminated string is the parser's job.
        assert_eq!(l.check_text(r#"["[[[[", "{{{{"]"#), Ok(()));
        assert_eq!(l.check_text(r#"["abc"#), Ok(()));
        assert_eq!(l.check_text(r#"["ab\"#), Ok(()));
    }

    #[test]
    fn matrix_count_is_computed_without_expanding_and_never_overflows() {
        let values: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let mut t = Task::named("big");
        for k in 0..9 {
            t.matrix.insert(format!("k{k}"), values.clone());
        }
        assert_eq!(combination_count(&t), Some(1_000_000_000));
        let e = Limits::DEFAULT.check_graph(&Graph {
            tasks: vec![t.clone()],
            ..Graph::new()
        });
        assert_eq!(
            e.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "task \"big\" has a matrix of 1000000000 combinations (9 dimensions); the limit is 256"
            ]
        );
        for k in 9..60 {
            t.matrix.insert(format!("k{k}"), values.clone());
        }
        assert_eq!(combination_count(&t), None);
        let e = Limits::DEFAULT.check_graph(&Graph {
            tasks: vec![t],
            ..Graph::new()
        });
        assert_eq!(
            e[0].to_string(),
            "task \"big\" has a matrix of more than 340282366920938463463374607431768211455 combinations (60 dimensions); the limit is 256"
        );
    }

    #[test]
    fn expansion_totals() {
        // 20 matrix tasks of 256, and a task depending on all of them.
        let mut tasks = String::new();
        let vals: Vec<String> = (0..16).map(|i| format!("\"{i}\"")).collect();
        let vals = vals.join(",");
        for i in 0..20 {
            tasks.push_str(&format!(
                r#"{{"name": "m{i}", "command": "x", "matrix": {{"a": [{vals}], "b": [{vals}]}}}},"#
            ));
        }
        let deps: Vec<String> = (0..20).map(|i| format!("\"m{i}\"")).collect();
        tasks.push_str(&format!(
            r#"{{"name": "all", "command": "x", "depends_on": [{}]}}"#,
            deps.join(",")
        ));
        let g = graph(&format!(r#"{{"version": "1", "tasks": [{tasks}]}}"#));
        let msgs: Vec<String> = Limits {
            max_matrix_edges: 1000,
            max_tasks: 5000,
            max_edges: 5000,
            ..Limits::DEFAULT
        }
        .check_graph(&g)
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            msgs,
            [
                "the graph has 5121 tasks after matrix expansion; the limit is 5000",
                "the graph has 5120 dependency edges after matrix expansion; the limit is 5000",
                "the graph's matrices expand to 5120 tasks; the limit is 4096",
                "the graph's matrices expand to 5100 dependency edges (5100 of them from task \"all\"); the limit is 1000",
            ]
        );
        assert!(Limits::UNLIMITED.check_graph(&g).is_empty());
    }

    #[test]
    fn plain_graphs_count_tasks_and_edges() {
        let g = graph(
            r#"{"version": "1", "tasks": [{"name": "a", "command": "x"},
              {"name": "b", "command": "x", "depends_on": ["a", "a"], "needs": ["c"]}]}"#,
        );
        let l = Limits {
            max_tasks: 1,
            max_edges: 2,
            ..Limits::DEFAULT
        };
        let msgs: Vec<String> = l.check_graph(&g).iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "the graph has 2 tasks after matrix expansion; the limit is 1",
                "the graph has 3 dependency edges after matrix expansion; the limit is 2",
            ]
        );
        assert!(Limits::DEFAULT.check_graph(&g).is_empty());
    }

    #[test]
    fn long_names() {
        let l = Limits {
            max_name_bytes: 8,
            ..Limits::DEFAULT
        };
        let g = graph(
            r#"{"version": "1", "tasks": [
              {"name": "0123456789012345678901234567890123456789-and-more", "command": "x"},
              {"name": "m", "command": "x", "matrix": {"os": ["linux", "windows"]}},
              {"name": "k", "command": "x", "matrix": {"a-very-long-key": ["1"]}}]}"#,
        );
        let msgs: Vec<String> = l.check_graph(&g).iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "task \"0123456789012345678901234567890123456789...\" has a name of 49 bytes; the limit is 8",
                "task \"m\" has matrix expansion names of 9 bytes; the limit is 8",
                "task \"k\" has a matrix dimension name of 15 bytes; the limit is 8",
            ]
        );
    }
}
