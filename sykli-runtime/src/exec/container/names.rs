//! Labels and names of everything the executor creates on the engine.

use std::collections::HashMap;

use rand::Rng;

/// Label present on every container, network and volume sykli creates (`true`).
pub const LABEL_MANAGED: &str = "dev.sykli.managed";
/// Label holding the run id on containers and networks.
pub const LABEL_RUN: &str = "dev.sykli.run";
/// Label holding the task name on containers and networks.
pub const LABEL_TASK: &str = "dev.sykli.task";
/// Label holding the id of one attempt, used to sweep everything an attempt created.
pub const LABEL_ATTEMPT: &str = "dev.sykli.attempt";
/// Label holding the service name on sidecar containers.
pub const LABEL_SERVICE: &str = "dev.sykli.service";
/// Label holding the cache name on cache volumes.
pub const LABEL_CACHE: &str = "dev.sykli.cache";

/// Labels of the containers and network of one attempt.
pub(crate) fn attempt_labels(run_id: &str, task: &str, attempt: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_RUN.to_owned(), run_id.to_owned()),
        (LABEL_TASK.to_owned(), task.to_owned()),
        (LABEL_ATTEMPT.to_owned(), attempt.to_owned()),
    ])
}

/// A fresh attempt id: 12 random hex digits.
pub(crate) fn attempt_id() -> String {
    let n: u64 = rand::rng().random();
    format!("{:012x}", n & 0xffff_ffff_ffff)
}

/// Turns any text into a valid engine object name fragment: lowercase ASCII letters, digits,
/// `_`, `.` and `-`, at most `max` characters, never empty.
pub(crate) fn sanitise(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '.' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    out.truncate(max);
    let trimmed = out.trim_matches(|c| c == '-' || c == '.' || c == '_');
    if trimmed.is_empty() {
        "x".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Name of the container of a task (or of one of its services) in one attempt.
pub(crate) fn container_name(task: &str, attempt: &str, service: Option<&str>) -> String {
    match service {
        None => format!("sykli-{}-{attempt}", sanitise(task, 48)),
        Some(svc) => format!(
            "sykli-{}-{}-{attempt}",
            sanitise(task, 32),
            sanitise(svc, 24)
        ),
    }
}

/// Name of the private network of a task in one attempt.
pub(crate) fn network_name(task: &str, attempt: &str) -> String {
    format!("sykli-{}-{attempt}", sanitise(task, 48))
}

/// Name of the engine volume backing the cache called `cache`: `sykli-cache-<sanitised>`,
/// plus a short hash of the original name when sanitising changed it, so distinct caches never
/// share a volume.
pub fn cache_volume_name(cache: &str) -> String {
    let clean = sanitise(cache, 64);
    if clean == cache {
        format!("sykli-cache-{clean}")
    } else {
        let hash = blake3::hash(cache.as_bytes()).to_hex();
        format!("sykli-cache-{clean}-{}", &hash[..8])
    }
}

/// Splits an image reference into the `fromImage` and `tag` of a pull. A reference without a
/// tag or digest pulls `latest` (never every tag).
pub(crate) fn split_image_ref(image: &str) -> (String, String) {
    if image.contains('@') {
        return (image.to_owned(), String::new());
    }
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    match last_segment.rfind(':') {
        Some(i) => {
            let cut = image.len() - last_segment.len() + i;
            (image[..cut].to_owned(), image[cut + 1..].to_owned())
        }
        None => (image.to_owned(), "latest".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitise_keeps_valid_names_and_replaces_the_rest() {
        assert_eq!(sanitise("build", 10), "build");
        assert_eq!(sanitise("Test/Unit [linux]", 64), "test-unit--linux");
        assert_eq!(sanitise("///", 10), "x");
        assert_eq!(sanitise("abcdefghij", 4), "abcd");
    }

    #[test]
    fn cache_volume_names_are_stable_and_distinct() {
        assert_eq!(cache_volume_name("cargo"), "sykli-cache-cargo");
        let a = cache_volume_name("npm/cache");
        let b = cache_volume_name("npm:cache");
        assert!(a.starts_with("sykli-cache-npm-cache-"), "{a}");
        assert_ne!(a, b);
        assert_eq!(a, cache_volume_name("npm/cache"));
    }

    #[test]
    fn image_refs_split_into_name_and_tag() {
        assert_eq!(
            split_image_ref("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_image_ref("rust:1.95-slim"),
            ("rust".into(), "1.95-slim".into())
        );
        assert_eq!(
            split_image_ref("localhost:5000/team/app"),
            ("localhost:5000/team/app".into(), "latest".into())
        );
        assert_eq!(
            split_image_ref("localhost:5000/app:v2"),
            ("localhost:5000/app".into(), "v2".into())
        );
        assert_eq!(
            split_image_ref("alpine@sha256:abc"),
            ("alpine@sha256:abc".into(), String::new())
        );
    }
}
