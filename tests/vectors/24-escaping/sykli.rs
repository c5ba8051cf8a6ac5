//! Test vector 24-escaping: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("html <b>&</b>")
        .run(r#"echo "<script>alert('x')</script>" && cat C:\dir"#)
        .env("CTRL", "\x01\x1f\x7f")
        .env("BF", "\u{8}\u{c}")
        .env("SEP", "line\u{2028}para\u{2029}end")
        .env("UNICODE", "héllo wörld ✓ 日本 😀")
        .env("WS", "tab\tnewline\ncr\r")
        .env("QUOTE", r#"say "hi" \ bye"#);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
