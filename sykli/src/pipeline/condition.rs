//! Typed conditions rendered exactly as every sykli SDK renders them.

use std::fmt;
use std::ops::Not;

/// A condition for [`TaskBuilder::when_cond`](super::TaskBuilder::when_cond), rendered to the
/// condition language: `branch == 'main'`, `(A) && (B)`, `!(A)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Condition(String);

impl Condition {
    /// `branch == 'name'`, or `branch matches 'pattern'` when it contains `*`.
    pub fn branch(pattern: &str) -> Condition {
        Condition::compare("branch", pattern)
    }

    /// `tag == 'name'`, or `tag matches 'pattern'` when it contains `*`; an empty pattern
    /// means any tag (`tag != ''`).
    pub fn tag(pattern: &str) -> Condition {
        if pattern.is_empty() {
            return Condition::has_tag();
        }
        Condition::compare("tag", pattern)
    }

    /// `tag != ''`: the run is for some tag.
    pub fn has_tag() -> Condition {
        Condition("tag != ''".into())
    }

    /// `event == 'name'`.
    pub fn event(name: &str) -> Condition {
        Condition(format!("event == '{name}'"))
    }

    /// `ci == true`.
    pub fn in_ci() -> Condition {
        Condition("ci == true".into())
    }

    /// `(self) && (other)`.
    pub fn and(self, other: Condition) -> Condition {
        Condition(format!("({}) && ({})", self.0, other.0))
    }

    /// `(self) || (other)`.
    pub fn or(self, other: Condition) -> Condition {
        Condition(format!("({}) || ({})", self.0, other.0))
    }

    /// `!(self)`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Condition {
        Condition(format!("!({})", self.0))
    }

    /// The rendered expression.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn compare(var: &str, pattern: &str) -> Condition {
        if pattern.contains('*') {
            Condition(format!("{var} matches '{pattern}'"))
        } else {
            Condition(format!("{var} == '{pattern}'"))
        }
    }
}

impl Not for Condition {
    type Output = Condition;
    fn not(self) -> Condition {
        Condition::not(self)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Condition> for String {
    fn from(c: Condition) -> String {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_upstream_sdks() {
        assert_eq!(Condition::branch("main").as_str(), "branch == 'main'");
        assert_eq!(
            Condition::branch("release/*").as_str(),
            "branch matches 'release/*'"
        );
        assert_eq!(Condition::tag("v1").as_str(), "tag == 'v1'");
        assert_eq!(Condition::tag("v*").as_str(), "tag matches 'v*'");
        assert_eq!(Condition::tag("").as_str(), "tag != ''");
        assert_eq!(Condition::has_tag().as_str(), "tag != ''");
        assert_eq!(Condition::event("push").as_str(), "event == 'push'");
        assert_eq!(Condition::in_ci().as_str(), "ci == true");
        let c = Condition::branch("main")
            .and(Condition::in_ci())
            .or(!Condition::has_tag());
        assert_eq!(
            c.to_string(),
            "((branch == 'main') && (ci == true)) || (!(tag != ''))"
        );
        // and it parses in the runtime's language
        let parsed = sykli_runtime::graph::condition::parse(c.as_str()).unwrap();
        let ctx = sykli_runtime::graph::ConditionContext {
            branch: Some("main".into()),
            ci: true,
            ..Default::default()
        };
        assert!(parsed.evaluate(&ctx));
    }
}
