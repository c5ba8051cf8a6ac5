//! One-line rendering of an error and its causes.

/// An error and its `source()` causes on one line, joined by `": "`, e.g. `failed to open
/// the cache: failed to create /x: permission denied`. A cause whose text the line already
/// holds (messages that embed their source) is not repeated.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}
