//! One-line rendering of an error and its causes.

/// An error and its `source()` causes on one line, joined by `": "`, e.g. `failed to open
/// the cache: failed to create /x: permission denied`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
