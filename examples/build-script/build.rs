//! Generates `$OUT_DIR/generated.rs` from `schema/*.txt` with a sykli graph run in-process:
//! two native generators in parallel, then a shell task joining their output.
//! Cargo reruns this script only when a task input changes (`rerun-if-changed` from the
//! tasks' `inputs`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sykli::{NativeError, TaskCtx};

/// Reads `name = value` lines, skipping blanks and `#` comments.
fn entries(path: &Path) -> Result<Vec<(String, String)>, NativeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| NativeError::msg(format!("failed to read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(NativeError::msg(format!(
                "{}:{}: expected `name = value`",
                path.display(),
                i + 1
            )));
        };
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok(out)
}

fn out_dir(ctx: &TaskCtx) -> Result<PathBuf, NativeError> {
    ctx.env("OUT_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| NativeError::msg("OUT_DIR is not set: run me from cargo"))
}

#[sykli::task(inputs = ["schema/colors.txt"])]
async fn gen_colors(ctx: &TaskCtx) -> Result<(), NativeError> {
    let mut code = String::from(
        "/// Colours from schema/colors.txt.\npub const COLORS: &[(&str, u32)] = &[\n",
    );
    for (name, hex) in entries(&ctx.workdir().join("schema/colors.txt"))? {
        let value = u32::from_str_radix(&hex, 16)
            .map_err(|e| NativeError::msg(format!("colour {name}: bad hex {hex:?}: {e}")))?;
        writeln!(code, "    ({name:?}, 0x{value:06x}),").expect("writing to a String");
    }
    code.push_str("];\n");
    std::fs::write(out_dir(ctx)?.join("colors.rs"), code)?;
    Ok(())
}

#[sykli::task(inputs = ["schema/sizes.txt"])]
async fn gen_sizes(ctx: &TaskCtx) -> Result<(), NativeError> {
    let mut code =
        String::from("/// Sizes from schema/sizes.txt.\npub const SIZES: &[(&str, u16)] = &[\n");
    for (name, px) in entries(&ctx.workdir().join("schema/sizes.txt"))? {
        let value: u16 = px
            .parse()
            .map_err(|e| NativeError::msg(format!("size {name}: bad number {px:?}: {e}")))?;
        writeln!(code, "    ({name:?}, {value}),").expect("writing to a String");
    }
    code.push_str("];\n");
    std::fs::write(out_dir(ctx)?.join("sizes.rs"), code)?;
    Ok(())
}

/// Joins the generated parts into the one file `src/main.rs` includes.
#[sykli::task(
    cmd = r#"cat "$OUT_DIR/colors.rs" "$OUT_DIR/sizes.rs" > "$OUT_DIR/generated.rs""#,
    after = [gen_colors, gen_sizes]
)]
fn join() {}

fn main() -> Result<(), sykli::build::BuildError> {
    let (pipeline, natives) = sykli::build::declared_pipeline()?;
    sykli::build::rerun_if_changed(&pipeline);
    println!("cargo:rerun-if-changed=build.rs");
    sykli::build::run(&pipeline, natives)?;
    Ok(())
}
