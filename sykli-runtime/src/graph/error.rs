//! Validation errors and warnings. Every error names the task(s) at fault; the messages that
//! the SDKs also produce are word for word the same in Rust, Go and TypeScript.

use std::fmt;

use super::condition::ConditionError;
use super::model::Version;

/// One reason a graph is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A task has an empty name.
    #[error("task name must not be empty")]
    EmptyName {
        /// Position of the task in the document (0-based).
        index: usize,
    },
    /// Two tasks share a name.
    #[error("duplicate task name \"{name}\"")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A task needs a command and has none.
    #[error("task \"{task}\" has no command")]
    MissingCommand {
        /// The task.
        task: String,
    },
    /// `depends_on` (or a `task_inputs` source) names no task.
    #[error("task \"{task}\" depends on unknown task \"{dependency}\"{}", did_you_mean(.suggestion))]
    UnknownDependency {
        /// The dependent task.
        task: String,
        /// The name that matched nothing.
        dependency: String,
        /// The closest existing name, when one is close (Jaro-Winkler >= 0.8).
        suggestion: Option<String>,
    },
    /// A task lists itself as a dependency.
    #[error("task \"{task}\" depends on itself")]
    SelfDependency {
        /// The task.
        task: String,
    },
    /// Tasks depend on each other in a loop.
    #[error("dependency cycle detected: {}", .path.join(" -> "))]
    Cycle {
        /// The loop, first task repeated at the end: `a -> b -> a`.
        path: Vec<String>,
    },
    /// An env key is empty.
    #[error("task \"{task}\" has an empty env key")]
    EmptyEnvKey {
        /// The task.
        task: String,
    },
    /// A task uses a field that needs a newer format version than the document declares.
    #[error(
        "task \"{task}\" uses `{field}`, which needs graph version \"{needed}\" or later, but the document declares version \"{declared}\""
    )]
    VersionTooLow {
        /// The task.
        task: String,
        /// The field, e.g. `success_criteria`.
        field: &'static str,
        /// The lowest version that has the field.
        needed: Version,
        /// The version the document declares.
        declared: Version,
    },
    /// The document has `resources` but declares version "1".
    #[error(
        "the graph uses `resources`, which needs graph version \"2\" or later, but the document declares version \"{declared}\""
    )]
    ResourcesNeedVersion {
        /// The version the document declares.
        declared: Version,
    },
    /// `when` (or `condition`) does not parse.
    #[error("task \"{task}\" has an invalid condition: {error}")]
    InvalidCondition {
        /// The task.
        task: String,
        /// Where and why parsing failed.
        #[source]
        error: ConditionError,
    },
    /// A task needs a capability no task provides.
    #[error("task \"{task}\" needs \"{capability}\", but no task provides it")]
    NoProvider {
        /// The task.
        task: String,
        /// The capability.
        capability: String,
    },
    /// Several tasks provide the same capability.
    #[error("capability \"{capability}\" is provided by more than one task: {}", quoted_list(.tasks))]
    DuplicateProvider {
        /// The capability.
        capability: String,
        /// Every provider, in definition order.
        tasks: Vec<String>,
    },
    /// A `task_inputs` entry names an output its source task does not declare.
    #[error(
        "task \"{task}\" takes output \"{output}\" from task \"{from_task}\", which declares no such output"
    )]
    UndeclaredOutput {
        /// The consuming task.
        task: String,
        /// The producing task.
        from_task: String,
        /// The missing output name.
        output: String,
    },
    /// A mount names a resource that is not registered.
    #[error("task \"{task}\" mounts unknown resource \"{resource}\"")]
    UnknownResource {
        /// The task.
        task: String,
        /// The resource id.
        resource: String,
    },
    /// A mount's `type` disagrees with its resource.
    #[error(
        "task \"{task}\" mounts resource \"{resource}\" as {mount_type}, but it is a {resource_type}"
    )]
    MountTypeMismatch {
        /// The task.
        task: String,
        /// The resource id.
        resource: String,
        /// The mount's `type`.
        mount_type: &'static str,
        /// The resource's `type`.
        resource_type: &'static str,
    },
    /// A mount point is not an absolute path.
    #[error("task \"{task}\" mounts \"{resource}\" at \"{path}\", which is not an absolute path")]
    MountPathNotAbsolute {
        /// The task.
        task: String,
        /// The resource id.
        resource: String,
        /// The mount point.
        path: String,
    },
    /// A directory resource or `src:<path>` mount points outside the project.
    #[error("{} refers to directory \"{path}\", which is outside the project", owner(.task, .resource))]
    DirectoryEscapesProject {
        /// The task whose `src:<path>` mount escapes, if it is a mount.
        task: Option<String>,
        /// The resource id, if it is a registered resource.
        resource: Option<String>,
        /// The path.
        path: String,
    },
    /// A success criterion's path leaves the task's workdir.
    #[error("task \"{task}\" has success criterion path \"{path}\" outside its workdir")]
    CriterionPathEscapes {
        /// The task.
        task: String,
        /// The path.
        path: String,
    },
    /// More than one `exit_code` criterion.
    #[error("task \"{task}\" has more than one exit_code success criterion")]
    DuplicateExitCode {
        /// The task.
        task: String,
    },
    /// `timeout: 0`.
    #[error("task \"{task}\" has a timeout of 0 seconds (the minimum is 1)")]
    ZeroTimeout {
        /// The task.
        task: String,
    },
    /// A `background` task that cannot be a host service.
    #[error("task \"{task}\" is a background task but {problem}")]
    InvalidBackground {
        /// The task.
        task: String,
        /// What is wrong, e.g. "has an empty `ready` check".
        problem: &'static str,
    },
    /// A `sandbox` the sandbox executor cannot honour.
    #[error("task \"{task}\" is sandboxed but {problem}")]
    InvalidSandbox {
        /// The task.
        task: String,
        /// What is wrong, e.g. "has `memory_mb` 0".
        problem: String,
    },
    /// A `tests` value that names no known test output format.
    #[error(
        "task \"{task}\" has unknown test output format \"{value}\" in `tests` (expected one of: cargo, go-json, tap)"
    )]
    UnknownTestFormat {
        /// The task.
        task: String,
        /// The value given.
        value: String,
    },
    /// A service lacks an image or a name.
    #[error("task \"{task}\" has a service with an empty {field}")]
    IncompleteService {
        /// The task.
        task: String,
        /// `image` or `name`.
        field: &'static str,
    },
    /// A gate strategy lacks the field it reads.
    #[error("gate \"{task}\" uses strategy {strategy} but has no `{field}`")]
    IncompleteGate {
        /// The gate task.
        task: String,
        /// The strategy.
        strategy: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A matrix dimension has no values, or the matrix has an empty dimension name.
    #[error("task \"{task}\" has matrix dimension \"{dimension}\" {problem}")]
    BadMatrix {
        /// The task.
        task: String,
        /// The dimension.
        dimension: String,
        /// `with no values`, `with an empty name`, or `with duplicate value "x"`.
        problem: String,
    },
    /// A builder's `chain(...)` named a task that does not exist (SDK builders only).
    #[error("chain refers to unknown task \"{task}\"")]
    UnknownChainTask {
        /// The unknown name.
        task: String,
    },
    /// A name is longer than [`super::Limits::max_name_bytes`].
    #[error("task \"{task}\" has {what} of {bytes} bytes; the limit is {limit}")]
    NameTooLong {
        /// The task (its name cut to 40 characters when the name itself is too long).
        task: String,
        /// `a name`, `a matrix dimension name` or `matrix expansion names`.
        what: &'static str,
        /// The length found (the longest, for expansion names).
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A task's matrix has more combinations than [`super::Limits::max_matrix_combinations`].
    #[error(
        "task \"{task}\" has a matrix of {} combinations ({dimensions} dimensions); the limit is {limit}",
        count_or_more(.combinations)
    )]
    MatrixTooLarge {
        /// The task.
        task: String,
        /// The number of combinations; `None` when it exceeds `u128::MAX`.
        combinations: Option<u128>,
        /// The number of dimensions.
        dimensions: usize,
        /// The limit.
        limit: u64,
    },
    /// More tasks after matrix expansion than [`super::Limits::max_tasks`].
    #[error("the graph has {count} tasks after matrix expansion; the limit is {limit}")]
    TooManyTasks {
        /// The number of tasks.
        count: u64,
        /// The limit.
        limit: usize,
    },
    /// More dependency edges after matrix expansion than [`super::Limits::max_edges`].
    #[error("the graph has {count} dependency edges after matrix expansion; the limit is {limit}")]
    TooManyEdges {
        /// The number of edges (before deduplication).
        count: u64,
        /// The limit.
        limit: usize,
    },
    /// Matrix expansion would produce more tasks, edges or bytes than its limit.
    #[error(
        "the graph's matrices expand to {count} {what}{}; the limit is {limit}",
        worst_part(.worst)
    )]
    MatrixLimit {
        /// `tasks`, `dependency edges` or `bytes of tasks`.
        what: &'static str,
        /// How many the expansion would produce.
        count: u64,
        /// The limit.
        limit: usize,
        /// The task contributing the most, and how much, when one is named.
        worst: Option<(String, u64)>,
    },
    /// A matrix expansion's name equals another task's name.
    #[error("task \"{task}\" expands to \"{expanded}\", which is already the name of another task")]
    MatrixNameCollision {
        /// The matrix task.
        task: String,
        /// The colliding expanded name.
        expanded: String,
    },
}

fn count_or_more(n: &Option<u128>) -> String {
    match n {
        Some(n) => n.to_string(),
        None => format!("more than {}", u128::MAX),
    }
}

fn worst_part(w: &Option<(String, u64)>) -> String {
    match w {
        Some((task, n)) => format!(" ({n} of them from task \"{task}\")"),
        None => String::new(),
    }
}

fn did_you_mean(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean \"{s}\"?)"),
        None => String::new(),
    }
}

fn owner(task: &Option<String>, resource: &Option<String>) -> String {
    match (task, resource) {
        (Some(t), _) => format!("task \"{t}\""),
        (None, Some(r)) => format!("resource \"{r}\""),
        (None, None) => "the graph".to_string(),
    }
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ValidationError {
    /// The tasks this error is about (empty for graph-level errors).
    pub fn tasks(&self) -> Vec<&str> {
        use ValidationError::*;
        match self {
            EmptyName { .. }
            | ResourcesNeedVersion { .. }
            | TooManyTasks { .. }
            | TooManyEdges { .. } => vec![],
            MatrixLimit { worst, .. } => worst.iter().map(|(t, _)| t.as_str()).collect(),
            DirectoryEscapesProject { task, .. } => task.as_deref().into_iter().collect(),
            DuplicateName { name } => vec![name],
            Cycle { path } => path[..path.len().saturating_sub(1)]
                .iter()
                .map(String::as_str)
                .collect(),
            DuplicateProvider { tasks, .. } => tasks.iter().map(String::as_str).collect(),
            UnknownDependency { task, .. }
            | MissingCommand { task }
            | SelfDependency { task }
            | EmptyEnvKey { task }
            | VersionTooLow { task, .. }
            | InvalidCondition { task, .. }
            | NoProvider { task, .. }
            | UndeclaredOutput { task, .. }
            | UnknownResource { task, .. }
            | MountTypeMismatch { task, .. }
            | MountPathNotAbsolute { task, .. }
            | CriterionPathEscapes { task, .. }
            | DuplicateExitCode { task }
            | ZeroTimeout { task }
            | IncompleteService { task, .. }
            | InvalidBackground { task, .. }
            | InvalidSandbox { task, .. }
            | UnknownTestFormat { task, .. }
            | IncompleteGate { task, .. }
            | BadMatrix { task, .. }
            | MatrixNameCollision { task, .. }
            | NameTooLong { task, .. }
            | MatrixTooLarge { task, .. }
            | UnknownChainTask { task } => vec![task],
        }
    }

    /// A stable machine-readable code, e.g. `unknown_dependency`.
    pub fn code(&self) -> &'static str {
        use ValidationError::*;
        match self {
            EmptyName { .. } => "empty_name",
            DuplicateName { .. } => "duplicate_name",
            MissingCommand { .. } => "missing_command",
            UnknownDependency { .. } => "unknown_dependency",
            SelfDependency { .. } => "self_dependency",
            Cycle { .. } => "cycle",
            EmptyEnvKey { .. } => "empty_env_key",
            VersionTooLow { .. } | ResourcesNeedVersion { .. } => "version_too_low",
            InvalidCondition { .. } => "invalid_condition",
            NoProvider { .. } => "no_provider",
            DuplicateProvider { .. } => "duplicate_provider",
            UndeclaredOutput { .. } => "undeclared_output",
            UnknownResource { .. } => "unknown_resource",
            MountTypeMismatch { .. } => "mount_type_mismatch",
            MountPathNotAbsolute { .. } => "mount_path_not_absolute",
            DirectoryEscapesProject { .. } => "directory_escapes_project",
            CriterionPathEscapes { .. } => "criterion_path_escapes",
            DuplicateExitCode { .. } => "duplicate_exit_code",
            ZeroTimeout { .. } => "zero_timeout",
            IncompleteService { .. } => "incomplete_service",
            InvalidBackground { .. } => "invalid_background",
            InvalidSandbox { .. } => "invalid_sandbox",
            UnknownTestFormat { .. } => "unknown_test_format",
            IncompleteGate { .. } => "incomplete_gate",
            BadMatrix { .. } => "bad_matrix",
            MatrixNameCollision { .. } => "matrix_name_collision",
            UnknownChainTask { .. } => "unknown_chain_task",
            NameTooLong { .. } => "name_too_long",
            MatrixTooLarge { .. } => "matrix_too_large",
            TooManyTasks { .. } => "too_many_tasks",
            TooManyEdges { .. } => "too_many_edges",
            MatrixLimit { .. } => "matrix_limit",
        }
    }
}

/// Every error found in one graph, in a stable order (document order within each check).
#[derive(Clone, PartialEq, thiserror::Error)]
pub struct ValidationErrors {
    errors: Vec<ValidationError>,
}

impl ValidationErrors {
    /// Wraps a non-empty list.
    pub fn new(errors: Vec<ValidationError>) -> Self {
        ValidationErrors { errors }
    }

    /// The errors.
    pub fn errors(&self) -> &[ValidationError] {
        &self.errors
    }

    /// How many errors.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether there are none (never true for a returned `Err`).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl IntoIterator for ValidationErrors {
    type Item = ValidationError;
    type IntoIter = std::vec::IntoIter<ValidationError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

/// One error per line, each prefixed `error: `.
impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

/// Same as Display, so `fn main() -> Result<(), ValidationErrors>` prints readable errors.
impl fmt::Debug for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid pipeline")?;
        fmt::Display::fmt(self, f)
    }
}

/// Something valid but suspicious: kept, reported in verbose output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationWarning {
    /// A field this runtime does not know; it is kept and re-emitted but has no effect.
    UnknownField {
        /// The task, or `None` for a top-level field.
        task: Option<String>,
        /// The field, e.g. `oidc` or `gate.webhook_url`.
        field: String,
    },
    /// Both `when` and its alias `condition` are set and differ; `when` wins.
    ConditionShadowed {
        /// The task.
        task: String,
    },
}

impl fmt::Display for ValidationWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationWarning::UnknownField {
                task: Some(task),
                field,
            } => write!(
                f,
                "task \"{task}\" has unknown field `{field}` (kept, ignored)"
            ),
            ValidationWarning::UnknownField { task: None, field } => {
                write!(
                    f,
                    "the graph has unknown top-level field `{field}` (kept, ignored)"
                )
            }
            ValidationWarning::ConditionShadowed { task } => write!(
                f,
                "task \"{task}\" sets both `when` and `condition`; `when` is used"
            ),
        }
    }
}
