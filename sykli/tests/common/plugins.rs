//! Builds the target plugins in `examples/plugins/` from their C source into WebAssembly
//! components, the way examples/plugins/README.md does by hand, with the tools as libraries:
//! C bindings for the `sykli:target` WIT from `wit-bindgen-c`, clang `--target=wasm32-wasi`
//! against Debian's wasi-libc for a reactor module, then `wit-component` with the WASI preview1
//! adapter from `wasi-preview1-component-adapter-provider` for the component. Components are
//! cached by the digest of everything that goes into them, under the target dir.
//!
//! Clang, wasm-ld, wasi-libc and the wasm32 builtins come from `.ci/plugin-toolchain.sh`.
#![allow(dead_code)] // each test binary uses its own subset

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Bumped when the build recipe below changes in a way the digest cannot see.
const RECIPE: &str = "plugins-v1 wit-bindgen-c 0.63 wit-component 0.262 adapter 48";

/// The repository root (the workspace this test crate lives in).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the sykli crate lies inside the workspace")
        .to_path_buf()
}

/// `examples/plugins/`.
pub fn plugins_dir() -> PathBuf {
    repo_root().join("examples/plugins")
}

/// The source directory of the guest `name`: `examples/plugins/NAME/`, or for the misbehaving
/// test guests `examples/plugins/testdata/NAME/`.
pub fn source_dir(name: &str) -> PathBuf {
    let top = plugins_dir().join(name);
    if top.join(format!("{}.c", c_name(name))).is_file() {
        top
    } else {
        plugins_dir().join("testdata").join(name)
    }
}

/// The component of guest `name` built with the C preprocessor `defines` (`("VERSION",
/// "\"2.0.0\"")` is `-DVERSION="2.0.0"`); built at most once per digest of its inputs.
/// Panics with a message naming the missing tool or package, or the compiler's errors.
pub fn build_plugin(name: &str, defines: &[(&str, &str)]) -> PathBuf {
    match try_build_plugin(name, defines) {
        Ok(path) => path,
        Err(e) => panic!("building plugin `{name}`: {e}"),
    }
}

/// [`build_plugin`] returning its error instead.
pub fn try_build_plugin(name: &str, defines: &[(&str, &str)]) -> Result<PathBuf, String> {
    let src = source_dir(name);
    if !src.is_dir() {
        return Err(format!(
            "no guest source: neither {} nor {} exists",
            plugins_dir().join(name).display(),
            src.display()
        ));
    }
    let clang = Toolchain::find(&clang_path())?;
    let sources = c_sources(&src)?;
    let wit = wit_dir();

    let mut hasher = Sha256::new();
    hasher.update(RECIPE);
    hasher.update(&clang.version);
    for (k, v) in defines {
        hasher.update(format!("-D{k}={v}\n"));
    }
    for file in wit_files(&wit)?
        .iter()
        .chain(&sources)
        .chain(&headers(&common_dir())?)
    {
        // Names relative to the repository, so clones in other places share a digest.
        let name = file.strip_prefix(repo_root()).unwrap_or(file);
        let contents = read(file)?;
        hasher.update(format!("{}\0{}\0", name.display(), contents.len()));
        hasher.update(contents);
    }
    let digest = hex(&hasher.finalize()[..8]);
    let out_dir = cache_root().join(format!("{name}-{digest}"));
    let component = out_dir.join(format!("{name}.wasm"));
    if component.is_file() {
        return Ok(component);
    }

    // Build in a private directory, then rename it into place: tests build in parallel.
    std::fs::create_dir_all(cache_root())
        .map_err(|e| format!("failed to create {}: {e}", cache_root().display()))?;
    let work = tempfile::Builder::new()
        .prefix(&format!(".{name}-"))
        .tempdir_in(cache_root())
        .map_err(|e| {
            format!(
                "failed to create a build dir in {}: {e}",
                cache_root().display()
            )
        })?;
    let generated = work.path().join("gen");
    generate_bindings(&wit, &generated)?;
    let module = work.path().join(format!("{name}.module.wasm"));
    clang.compile(&sources, &generated, defines, &module)?;
    let bytes = componentize(&read(&module)?)?;
    validate_component(&bytes)?;
    std::fs::write(work.path().join(format!("{name}.wasm")), &bytes)
        .map_err(|e| format!("failed to write the component: {e}"))?;
    // Keep the component only: the bindings and the core module are rebuilt in a second.
    let _ = std::fs::remove_dir_all(&generated);
    let _ = std::fs::remove_file(&module);
    let work = work.keep();
    if let Err(e) = std::fs::rename(&work, &out_dir) {
        // Another test built the same digest first: keep its copy.
        let _ = std::fs::remove_dir_all(&work);
        if !component.is_file() {
            return Err(format!(
                "failed to move the build to {}: {e}",
                out_dir.display()
            ));
        }
    }
    Ok(component)
}

/// Writes a `plugin.toml` for `component` into `dir` (the manifest of
/// /work/wt/PLUGIN-CONTRACT.md) with `extra` appended verbatim (grants, limits), and returns
/// its path. The component is copied next to it so the manifest's path is relative.
pub fn manifest(dir: &Path, name: &str, component: &Path, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let file = format!("{name}.wasm");
    std::fs::copy(component, dir.join(&file)).unwrap();
    let path = dir.join("plugin.toml");
    std::fs::write(
        &path,
        format!("name = \"{name}\"\ncomponent = \"{file}\"\n{extra}"),
    )
    .unwrap();
    path
}

/// Checks that `bytes` is a valid WebAssembly component exporting the `sykli:target` world's
/// `describe` and `run`.
pub fn validate_component(bytes: &[u8]) -> Result<(), String> {
    if !wasmparser::Parser::is_component(bytes) {
        return Err("the output is a core module, not a component".to_string());
    }
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator
        .validate_all(bytes)
        .map_err(|e| format!("the component is invalid: {e}"))?;
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("the component does not parse: {e}"))? {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    let export = export.map_err(|e| format!("bad export: {e}"))?;
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    for wanted in ["describe", "run"] {
        if !exports.iter().any(|e| e == wanted) {
            return Err(format!(
                "the component does not export `{wanted}` (exports: {})",
                exports.join(", ")
            ));
        }
    }
    Ok(())
}

/// The clang the guests are built with: `SYKLI_PLUGIN_CLANG`, else `clang` on PATH.
pub fn clang_path() -> PathBuf {
    std::env::var_os("SYKLI_PLUGIN_CLANG").map_or_else(|| PathBuf::from("clang"), PathBuf::from)
}

/// Checks that `clang` and everything it needs to build a guest are installed; its version
/// line, or an error naming the missing tool or Debian package.
pub fn check_toolchain(clang: &Path) -> Result<String, String> {
    Toolchain::find(clang).map(|t| t.version)
}

/// The WIT package the guests implement.
pub fn wit_dir() -> PathBuf {
    repo_root().join("sykli-runtime/wit")
}

/// Headers shared by every guest.
fn common_dir() -> PathBuf {
    plugins_dir().join("common")
}

/// Where built components are kept: per test run's target dir, across runs.
fn cache_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugins")
}

/// C identifiers cannot hold `-`: guest `http-runner` is `http_runner.c`.
fn c_name(name: &str) -> String {
    name.replace('-', "_")
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("failed to read {}: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The files of `dir` whose name ends in one of `exts`, sorted.
fn files_with(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>, String> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("failed to read {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)))
        .collect();
    files.sort();
    Ok(files)
}

fn c_sources(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = files_with(dir, &["c"])?;
    files.extend(files_with(dir, &["h"])?);
    if !files
        .iter()
        .any(|p| p.extension().is_some_and(|x| x == "c"))
    {
        return Err(format!("no C source in {}", dir.display()));
    }
    Ok(files)
}

fn headers(dir: &Path) -> Result<Vec<PathBuf>, String> {
    files_with(dir, &["h", "c"])
}

fn wit_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let files = files_with(dir, &["wit"])?;
    if files.is_empty() {
        return Err(format!("no WIT file in {}", dir.display()));
    }
    Ok(files)
}

/// Writes `target.h`, `target.c` and `target_component_type.o` (the C bindings of the `target`
/// world of the WIT in `wit`) into `out`.
pub fn generate_bindings(wit: &Path, out: &Path) -> Result<(), String> {
    use wit_bindgen_core::wit_parser::Resolve;

    let mut resolve = Resolve::default();
    let (pkg, _) = resolve
        .push_path(wit)
        .map_err(|e| format!("the WIT in {} does not parse: {e:#}", wit.display()))?;
    let world = resolve
        .select_world(&[pkg], Some("target"))
        .map_err(|e| format!("no world `target` in {}: {e:#}", wit.display()))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .map_err(|e| format!("wit-bindgen-c failed: {e:#}"))?;
    std::fs::create_dir_all(out).map_err(|e| format!("failed to create {}: {e}", out.display()))?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        std::fs::write(&path, contents)
            .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The component of a reactor module, its WASI preview1 imports served by the adapter.
fn componentize(module: &[u8]) -> Result<Vec<u8>, String> {
    use wasi_preview1_component_adapter_provider::{
        WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    };
    wit_component::ComponentEncoder::default()
        .module(module)
        .map_err(|e| format!("wit-component rejected the module: {e:#}"))?
        .validate(true)
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .map_err(|e| format!("wit-component rejected the WASI adapter: {e:#}"))?
        .encode()
        .map_err(|e| format!("wit-component could not make a component: {e:#}"))
}

/// Debian's clang able to target wasm32-wasi.
struct Toolchain {
    clang: PathBuf,
    /// `clang --version`'s first line, part of the digest.
    version: String,
}

impl Toolchain {
    /// Clang, its wasm32 builtins, wasm-ld and wasi-libc, each checked, so a missing one is
    /// named with its Debian package rather than left to a linker error.
    fn find(clang: &Path) -> Result<Self, String> {
        const FIX: &str = "install it with `bash .ci/plugin-toolchain.sh install`";
        let clang = clang.to_path_buf();
        let version = Command::new(&clang)
            .arg("--version")
            .output()
            .map_err(|e| {
                format!(
                    "`{}` cannot be run ({e}): the plugin tests need clang (Debian package \
                     `clang`); {FIX}",
                    clang.display()
                )
            })?;
        let version = String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let major = version
            .split("clang version ")
            .nth(1)
            .and_then(|v| v.split('.').next())
            .unwrap_or("N")
            .to_string();
        let ask = |flag: &str| -> Result<String, String> {
            let out = Command::new(&clang)
                .args(["--target=wasm32-wasi", flag])
                .output()
                .map_err(|e| format!("`{} {flag}` failed: {e}", clang.display()))?;
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let builtins = ask("-print-libgcc-file-name")?;
        if !Path::new(&builtins).is_file() {
            return Err(format!(
                "clang's wasm32 builtins {builtins} are missing (Debian package \
                 `libclang-rt-{major}-dev-wasm32`); {FIX}"
            ));
        }
        let libc = ask("-print-file-name=libc.a")?;
        if !Path::new(&libc).is_absolute() || !Path::new(&libc).is_file() {
            return Err(format!(
                "clang finds no wasm32-wasi libc.a (Debian package `wasi-libc`); {FIX}"
            ));
        }
        let ld = ask("-print-prog-name=wasm-ld")?;
        let ld_found = Path::new(&ld).is_absolute() && Path::new(&ld).is_file()
            || Command::new(&ld).arg("--version").output().is_ok();
        if !ld_found {
            return Err(format!(
                "the wasm-ld linker is missing (Debian package `lld`); {FIX}"
            ));
        }
        Ok(Self { clang, version })
    }

    /// Compiles and links `sources` with the generated bindings in `generated` into a reactor
    /// module (no `main`; `_initialize` runs the C constructors).
    fn compile(
        &self,
        sources: &[PathBuf],
        generated: &Path,
        defines: &[(&str, &str)],
        out: &Path,
    ) -> Result<(), String> {
        let mut cmd = Command::new(&self.clang);
        cmd.args([
            "--target=wasm32-wasi",
            "-mexec-model=reactor",
            "-O2",
            "-std=gnu11",
            "-Wall",
            "-Werror",
            "-Wno-unused-function",
        ])
        .arg("-I")
        .arg(generated)
        .arg("-I")
        .arg(common_dir());
        for (k, v) in defines {
            cmd.arg(format!("-D{k}={v}"));
        }
        cmd.args(
            sources
                .iter()
                .filter(|p| p.extension().is_some_and(|x| x == "c")),
        )
        .arg(generated.join("target.c"))
        .arg(generated.join("target_component_type.o"))
        .arg("-o")
        .arg(out);
        let output = cmd
            .output()
            .map_err(|e| format!("`{}` cannot be run: {e}", self.clang.display()))?;
        if !output.status.success() {
            return Err(format!(
                "clang failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(())
    }
}

/// What the `spawn` plugin needs: `sh`, and the directory its tasks run in.
pub const SPAWN_GRANTS: &str =
    "[grants]\nspawn = [\"sh\"]\ndirs = [{ path = \".\", write = true }]\n";

/// A manifest for `spawn` built at `version`, in its own directory under `dir`.
pub fn spawn_manifest(dir: &Path, version: &str) -> PathBuf {
    let wasm = build_plugin("spawn", &[("VERSION", version)]);
    manifest(
        &dir.join(format!("spawn-{version}")),
        "spawn",
        &wasm,
        SPAWN_GRANTS,
    )
}

/// A manifest for guest `name` (no VERSION define) with `extra` grants and limits, in its own
/// directory under `dir`.
pub fn guest_manifest(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let wasm = build_plugin(name, &[]);
    manifest(&dir.join(name), name, &wasm, extra)
}

/// Pushes `spawn` 1.0.0 to the server at `url` (a worker or serve), runs a remote task on it
/// that fails its first attempt and passes its second (`retry: 1`), and asserts the plugin saw
/// attempt 2 (the spawn guest logs it) and the task passed.
pub fn assert_a_retried_remote_task_reaches_the_plugin_as_attempt_2(dir: &Path, url: &str) {
    use super::runs::{finish, start_remote_run, task_lines};
    let v1 = spawn_manifest(dir, "1.0.0");
    let pushed = super::sykli(dir, &["plugin", "push", v1.to_str().unwrap(), "--to", url]);
    assert!(pushed.status.success(), "{}", super::text(&pushed));
    let marker = dir.join("tried");
    let task = serde_json::json!({
        "name": "flaky", "target": "spawn", "remote": true, "retry": 1,
        "env": {"PATH": "/usr/local/bin:/usr/bin:/bin"},
        "command": format!(
            "if [ -f {m} ]; then echo second time lucky; else touch {m}; exit 1; fi",
            m = marker.display()
        ),
    });
    let (_project, run) =
        start_remote_run(serde_json::json!({"version": "1", "tasks": [task]}), url);
    let out = finish(run, "the retried remote run");
    let all = super::text(&out);
    assert!(out.status.success(), "{all}");
    let lines = task_lines(&all, "flaky");
    assert!(lines.contains(&"spawn plugin 1.0.0: attempt 2"), "{all}");
    assert!(lines.contains(&"second time lucky"), "{all}");
}
