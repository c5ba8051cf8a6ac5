//! Checks: a shell task and a native one.

use std::path::{Path, PathBuf};

use sykli::TaskCtx;

/// Spelled in two halves so this file does not fail its own check.
const MARKER: &str = concat!("TO", "DO");

/// Formatting, as a shell command.
#[sykli::task(cmd = "rustfmt --check --edition 2024 src/main.rs", inputs = ["src/**/*.rs"])]
pub fn fmt() {}

/// Fails when a Rust source file under `src/` still holds a to-do marker, naming every such file.
#[sykli::task(inputs = ["src/**/*.rs"], after = [fmt], timeout = "2m")]
pub async fn lint(ctx: &TaskCtx) -> Result<(), String> {
    let mut offenders = Vec::new();
    let root = ctx.workdir().join("src");
    let mut files = Vec::new();
    collect_rust_files(&root, &mut files)
        .map_err(|e| format!("failed to read {}: {e}", root.display()))?;
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("failed to read {}: {e}", file.display()))?;
        if text.contains(MARKER) {
            offenders.push(
                file.strip_prefix(ctx.workdir())
                    .unwrap_or(&file)
                    .display()
                    .to_string(),
            );
        }
    }
    if offenders.is_empty() {
        Ok(())
    } else {
        Err(format!("{MARKER} left in {}", offenders.join(", ")))
    }
}

fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}
