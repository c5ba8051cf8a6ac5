//! What conditions are evaluated against: the git branch and tag, the CI event, whether this
//! is CI, and the pull-request number, read from the CI provider's environment variables
//! (GitHub Actions, GitLab CI, Buildkite, generic `CI`) or, locally, from `git`.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::graph::ConditionContext;

/// Detection of the [`ConditionContext`] of a run.
pub struct RunContext;

impl RunContext {
    /// Detects the context from the process environment and `git` in `project_root`.
    pub fn detect(project_root: &Path) -> ConditionContext {
        Self::detect_with(
            |k| std::env::var(k).ok().filter(|v| !v.is_empty()),
            project_root,
        )
    }

    /// Detects the context from the given variable lookup (non-empty values only) and `git`
    /// in `project_root` for whatever the variables leave open.
    pub fn detect_with(
        var: impl Fn(&str) -> Option<String>,
        project_root: &Path,
    ) -> ConditionContext {
        let mut ctx = RunContext::from_ci_vars(&var);
        if ctx.branch.is_none() && ctx.tag.is_none() {
            ctx.branch = git(
                project_root,
                &["symbolic-ref", "--quiet", "--short", "HEAD"],
            );
        }
        if ctx.tag.is_none() && ctx.pr_number.is_none() {
            ctx.tag = git(
                project_root,
                &["describe", "--tags", "--exact-match", "HEAD"],
            );
        }
        ctx
    }

    /// The context CI variables alone give (no `git`).
    pub fn from_ci_vars(var: &impl Fn(&str) -> Option<String>) -> ConditionContext {
        let truthy = |k: &str| var(k).is_some_and(|v| v != "false" && v != "0");
        let mut ctx = ConditionContext {
            platform: Some(std::env::consts::OS.to_owned()),
            ..ConditionContext::default()
        };
        let mut provider: Option<&str> = None;
        if truthy("GITHUB_ACTIONS") {
            provider = Some("github");
            ctx.event = var("GITHUB_EVENT_NAME");
            if let Some(r) = var("GITHUB_REF") {
                if let Some(b) = r.strip_prefix("refs/heads/") {
                    ctx.branch = Some(b.to_owned());
                } else if let Some(t) = r.strip_prefix("refs/tags/") {
                    ctx.tag = Some(t.to_owned());
                } else if let Some(pr) = r.strip_prefix("refs/pull/") {
                    ctx.pr_number = pr.split('/').next().map(str::to_owned);
                }
            }
            if ctx.pr_number.is_some() || ctx.event.as_deref() == Some("pull_request") {
                ctx.branch = var("GITHUB_HEAD_REF").or(ctx.branch);
            }
        } else if truthy("GITLAB_CI") {
            provider = Some("gitlab");
            ctx.tag = var("CI_COMMIT_TAG");
            ctx.pr_number = var("CI_MERGE_REQUEST_IID");
            ctx.branch =
                var("CI_COMMIT_BRANCH").or_else(|| var("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"));
            ctx.event = var("CI_PIPELINE_SOURCE").map(|s| match s.as_str() {
                "merge_request_event" => "pull_request".to_owned(),
                _ => s,
            });
        } else if truthy("BUILDKITE") {
            provider = Some("buildkite");
            ctx.branch = var("BUILDKITE_BRANCH");
            ctx.tag = var("BUILDKITE_TAG");
            ctx.pr_number = var("BUILDKITE_PULL_REQUEST").filter(|v| v != "false");
            ctx.event = if ctx.pr_number.is_some() {
                Some("pull_request".into())
            } else if ctx.tag.is_some() {
                Some("tag".into())
            } else {
                match var("BUILDKITE_SOURCE").as_deref() {
                    Some("schedule") => Some("schedule".into()),
                    Some("ui" | "api" | "trigger_job") => Some("manual".into()),
                    _ => Some("push".into()),
                }
            };
        } else if truthy("CI") {
            provider = Some("ci");
        }
        ctx.ci = provider.is_some();
        ctx.runner = var("RUNNER_NAME")
            .or_else(|| var("CI_RUNNER_DESCRIPTION"))
            .or_else(|| var("BUILDKITE_AGENT_NAME"));
        ctx
    }
}

/// Runs a git query; `None` when git is missing, this is no repository, or the query fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn github_push_tag_and_pull_request() {
        let c = RunContext::from_ci_vars(&vars(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_EVENT_NAME", "push"),
        ]));
        assert_eq!(
            (c.branch.as_deref(), c.event.as_deref(), c.ci),
            (Some("main"), Some("push"), true)
        );
        let c = RunContext::from_ci_vars(&vars(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/tags/v1.2"),
        ]));
        assert_eq!((c.branch, c.tag.as_deref()), (None, Some("v1.2")));
        let c = RunContext::from_ci_vars(&vars(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/pull/42/merge"),
            ("GITHUB_HEAD_REF", "feature/x"),
            ("GITHUB_EVENT_NAME", "pull_request"),
        ]));
        assert_eq!(
            (c.pr_number.as_deref(), c.branch.as_deref()),
            (Some("42"), Some("feature/x"))
        );
    }

    #[test]
    fn gitlab_and_buildkite() {
        let c = RunContext::from_ci_vars(&vars(&[
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_SOURCE", "merge_request_event"),
            ("CI_MERGE_REQUEST_IID", "7"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "fix"),
        ]));
        assert_eq!(
            (
                c.event.as_deref(),
                c.pr_number.as_deref(),
                c.branch.as_deref()
            ),
            (Some("pull_request"), Some("7"), Some("fix"))
        );
        let c = RunContext::from_ci_vars(&vars(&[
            ("BUILDKITE", "true"),
            ("BUILDKITE_BRANCH", "main"),
            ("BUILDKITE_PULL_REQUEST", "false"),
        ]));
        assert_eq!(
            (c.branch.as_deref(), c.pr_number, c.event.as_deref()),
            (Some("main"), None, Some("push"))
        );
        let c = RunContext::from_ci_vars(&vars(&[("CI", "1")]));
        assert!(c.ci);
        assert!(!RunContext::from_ci_vars(&vars(&[])).ci);
    }

    #[test]
    fn git_branch_tag_detached_and_no_repo() {
        let none = vars(&[]);
        let d = tempfile::tempdir().unwrap();
        let c = RunContext::detect_with(&none, d.path());
        assert_eq!((c.branch.as_ref(), c.tag.as_ref()), (None, None));
        let g = |args: &[&str]| {
            let ok = Command::new("git")
                .args(args)
                .current_dir(d.path())
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@t")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@t")
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        g(&["init", "-q", "-b", "trunk"]);
        g(&["commit", "-q", "--allow-empty", "-m", "x"]);
        let c = RunContext::detect_with(&none, d.path());
        assert_eq!((c.branch.as_deref(), c.tag.as_ref()), (Some("trunk"), None));
        g(&["tag", "v9"]);
        g(&["checkout", "-q", "--detach"]);
        let c = RunContext::detect_with(&none, d.path());
        assert_eq!((c.branch.as_ref(), c.tag.as_deref()), (None, Some("v9")));
    }
}
