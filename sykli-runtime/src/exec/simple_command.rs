//! The fast path for simple commands, as GNU make does it: a command that is only plain words
//! (no quoting, expansion, redirection, globbing, operators or assignments) and whose program
//! is not a shell-only builtin is exec'd directly instead of through `/bin/sh -c`, which saves
//! starting a shell per task. Anything else, including a program not found on the PATH (so
//! the shell reports it, exit 127, as usual), goes to the shell: the fast path never changes
//! what a command means.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Programs that must run in the shell: builtins that act on the shell itself or behave
/// differently from their `/usr/bin` namesakes, and reserved words.
const SHELL_ONLY: &[&str] = &[
    ".", ":", "[", "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done",
    "elif", "else", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi", "for", "function",
    "getopts", "hash", "if", "in", "jobs", "kill", "let", "local", "login", "logout", "printf",
    "pwd", "read", "readonly", "return", "select", "set", "shift", "source", "test", "then",
    "time", "times", "trap", "type", "ulimit", "umask", "unalias", "unset", "until", "wait",
    "while",
];

/// Whether `c` means nothing special to the shell inside a word.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '.' | '/' | ',' | ':' | '@' | '%' | '+' | '-' | '=')
}

/// The program path and arguments when `command` can run without a shell; `path` is the PATH
/// the task sees.
pub fn direct_argv(command: &str, path: Option<&OsString>) -> Option<(PathBuf, Vec<String>)> {
    if command.is_empty() || !command.chars().all(|c| c == ' ' || plain(c)) {
        return None;
    }
    let mut words = command.split(' ').filter(|w| !w.is_empty());
    let program = words.next()?;
    if program.contains('=') || program.contains('/') || SHELL_ONLY.contains(&program) {
        return None;
    }
    let resolved = find_in_path(program, path?)?;
    Some((resolved, words.map(str::to_owned).collect()))
}

/// The first executable file named `program` in the directories of `path`.
fn find_in_path(program: &str, path: &OsString) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> OsString {
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into())
    }

    #[test]
    fn plain_words_run_directly() {
        let (prog, args) = direct_argv("true", Some(&path())).expect("direct");
        assert!(prog.ends_with("true") && prog.is_absolute());
        assert!(args.is_empty());
        let (prog, args) = direct_argv("sleep  0.1", Some(&path())).expect("direct");
        assert!(prog.ends_with("sleep"));
        assert_eq!(args, ["0.1"]);
        assert!(direct_argv("echo a=b --x=1,2:3@4%5+6", Some(&path())).is_some());
    }

    #[test]
    fn anything_the_shell_would_interpret_goes_to_the_shell() {
        for command in [
            "echo $HOME",
            "echo 'a b'",
            "echo \"a\"",
            "ls *",
            "ls ?",
            "a && b",
            "a || b",
            "a; b",
            "a | b",
            "a > f",
            "a < f",
            "a &",
            "(a)",
            "{ a; }",
            "echo ~",
            "echo `x`",
            "echo a\\ b",
            "a\nb",
            "a\tb",
            "! a",
            "# c",
            "X=1 env",
            "exit 3",
            "cd /tmp",
            "export A=1",
            "pwd",
            "printf %s x",
            "test -f x",
            "[ -f x ]",
            "./script.sh",
            "/bin/true",
            "",
            "   ",
        ] {
            assert_eq!(direct_argv(command, Some(&path())), None, "{command:?}");
        }
    }

    #[test]
    fn a_program_not_on_the_path_goes_to_the_shell() {
        assert_eq!(direct_argv("no-such-program-sykli x", Some(&path())), None);
        assert_eq!(direct_argv("true", None), None);
        assert_eq!(
            direct_argv("true", Some(&OsString::from("relative/dir"))),
            None
        );
    }
}
