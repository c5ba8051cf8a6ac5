//! Tiny plugin components for tests and benchmarks, built here from a WAT core module plus
//! the WIT (wit-component), so no C toolchain is needed: each exports `describe` and a `run`
//! with one fixed [`Behaviour`]. The real example plugins live in `examples/plugins/`.

use super::host::CONTRACT;

/// What a fixture's `run` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Logs `fixture VERSION` through `host.log`, then returns `ok(exit_code)`.
    Exit(i32),
    /// Counts to `n` (a CPU-bound loop), then returns `ok(exit_code)`.
    Count {
        /// Iterations.
        n: i64,
        /// The exit code returned afterwards.
        exit_code: i32,
    },
    /// Loops forever.
    Spin,
    /// Grows its memory without bound.
    Hog,
    /// Executes `unreachable`.
    Trap,
    /// Returns `err(denied("fixture says no"))`.
    Denied,
}

/// A component named `name` at `version` whose `run` does `behaviour`.
pub fn component(name: &str, version: &str, behaviour: Behaviour) -> Result<Vec<u8>, String> {
    let body = match behaviour {
        Behaviour::Exit(code) => format!(
            "(call $log (i32.const 1) (i32.const 256) (i32.const {len}))
             (call $ok (i32.const {code}))",
            len = "fixture ".len() + version.len()
        ),
        Behaviour::Count { n, exit_code } => format!(
            "(local.set $i (i64.const 0))
             (block $done (loop $l
               (br_if $done (i64.ge_s (local.get $i) (i64.const {n})))
               (local.set $i (i64.add (local.get $i) (i64.const 1)))
               (br $l)))
             (call $ok (i32.const {exit_code}))"
        ),
        Behaviour::Spin => "(loop $l (br $l)) (unreachable)".to_owned(),
        Behaviour::Hog => {
            "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) (unreachable)".to_owned()
        }
        Behaviour::Trap => "(unreachable)".to_owned(),
        Behaviour::Denied => "(i32.store8 (i32.const 128) (i32.const 1))
             (i32.store8 (i32.const 132) (i32.const 0))
             (i32.store (i32.const 136) (i32.const 512))
             (i32.store (i32.const 140) (i32.const 15))
             (i32.const 128)"
            .to_owned(),
    };
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let wat = format!(
        r#"(module
  (import "sykli:target/host@0.1.0" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "{name}")
  (data (i32.const 48) "{version}")
  (data (i32.const 80) "a sykli test fixture")
  (data (i32.const 256) "fixture {version}")
  (data (i32.const 512) "fixture says no")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func $ok (param $code i32) (result i32)
    (i32.store8 (i32.const 128) (i32.const 0))
    (i32.store (i32.const 132) (local.get $code))
    (i32.const 128))
  (func (export "describe") (result i32)
    (i32.store (i32.const 192) (i32.const 16))
    (i32.store (i32.const 196) (i32.const {name_len}))
    (i32.store (i32.const 200) (i32.const 48))
    (i32.store (i32.const 204) (i32.const {version_len}))
    (i32.store (i32.const 208) (i32.const 80))
    (i32.store (i32.const 212) (i32.const 20))
    (i32.const 192))
  (func (export "run")
    (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i64 i32 i32) (result i32)
    (local $i i64)
    {body}))
"#,
        name = esc(name),
        version = esc(version),
        name_len = name.len(),
        version_len = version.len(),
    );
    let mut module = wat::parse_str(&wat).map_err(|e| format!("fixture WAT: {e}"))?;
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve
        .push_str("target.wit", include_str!("../../wit/target.wit"))
        .map_err(|e| format!("parsing the WIT: {e:#}"))?;
    let world = resolve
        .select_world(&[pkg], Some("target"))
        .map_err(|e| format!("selecting the world of {CONTRACT}: {e:#}"))?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .map_err(|e| format!("embedding the WIT: {e:#}"))?;
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("encoding the component: {e:#}"))
}
