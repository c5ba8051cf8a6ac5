//! Two functions in different modules declaring one task name: reported at startup,
//! naming both declarations with file and line.

use sykli::tasks::{CollectError, Declaration, declared_tasks};

mod one {
    #[sykli::task(cmd = "make", name = "build")]
    pub fn make() {}
}

mod two {
    #[sykli::task(cmd = "cargo build")]
    pub fn build() {}
}

#[test]
fn a_duplicate_task_name_names_both_declarations() {
    let errors = declared_tasks(|n| n.to_string()).unwrap_err();
    let expected = CollectError::DuplicateTask {
        name: "build".to_string(),
        first: Declaration {
            function: "macro_duplicates::one::make".to_string(),
            file: "sykli/tests/macro_duplicates.rs".to_string(),
            line: 8,
        },
        second: Declaration {
            function: "macro_duplicates::two::build".to_string(),
            file: "sykli/tests/macro_duplicates.rs".to_string(),
            line: 13,
        },
    };
    assert_eq!(errors, std::slice::from_ref(&expected));
    assert_eq!(
        expected.to_string(),
        "duplicate task name \"build\": declared by `macro_duplicates::one::make` at \
         sykli/tests/macro_duplicates.rs:8 and by `macro_duplicates::two::build` at \
         sykli/tests/macro_duplicates.rs:13"
    );
}
