//! Tasks declared with `#[sykli::task]` anywhere in the program.
//!
//! Each annotated function registers a static [`TaskRegistration`] through `inventory`;
//! [`declared_tasks`] collects them (ordered by source file, then line) into wire tasks and
//! checks what the compiler cannot see across modules: two functions declaring the same task
//! name is an error naming both, with file and line.

mod collect;
pub(crate) mod registration;

pub use collect::{CollectError, Declaration, DeclaredTasks, declared_tasks};
pub use registration::{BoxError, NativeTaskFn, TaskAction, TaskRegistration};
