//! GitHub Actions `if:` expressions as sykli conditions, where they mean the same thing.
//!
//! Translated: comparisons (`==`, `!=`) of `github.ref` (`refs/heads/B` -> `branch`,
//! `refs/tags/T` -> `tag`), `github.ref_name` (the branch or the tag), `github.ref_type`
//! (`tag`, `branch`) and `github.event_name` (`event`) with a string;
//! `startsWith(github.ref, 'refs/tags/P')` (`tag matches 'P*'`, or any tag) and
//! `startsWith(github.ref, 'refs/heads/P')` (`branch matches 'P**'`); `success()` (the
//! default: a sykli task runs when its dependencies passed); `true`/`false`; `!`, `&&`, `||`
//! and parentheses. Anything else (other contexts such as `github.event.*`, `env`, `matrix`,
//! `needs`; `always()`, `failure()`, `cancelled()`; other functions) is an error saying why,
//! so the caller lists the whole `if:` as not translated instead of widening or narrowing it.
//! (GitHub compares strings ignoring case; sykli conditions do not.)

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Str(String),
    Bool(bool),
    Num(String),
    Null,
    Path(String),
    Call(String, Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(bool, Box<Expr>, Box<Expr>),
}

/// A translated condition: always true (no `when` needed), or an expression.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    True,
    Expr(String),
}

/// The sykli condition of a GitHub `if:` (with or without `${{ }}`): `Ok(None)` when it
/// always holds for a task that runs (`success()`), `Err(why)` when it cannot be translated.
pub fn translate(text: &str) -> Result<Option<String>, String> {
    let t = text.trim();
    let t = match t.strip_prefix("${{").and_then(|r| r.strip_suffix("}}")) {
        Some(inner) if !inner.contains("${{") => inner.trim(),
        _ => t,
    };
    let expr = Parser::new(t).parse()?;
    Ok(match cond(&expr)? {
        Cond::True => None,
        Cond::Expr(s) => Some(s),
    })
}

fn quote(s: &str) -> Result<String, String> {
    if !s.contains('\'') {
        Ok(format!("'{s}'"))
    } else if !s.contains('"') {
        Ok(format!("\"{s}\""))
    } else {
        Err(format!("the string {s:?} holds both kinds of quote"))
    }
}

fn cmp(var: &str, eq: bool, value: &str) -> Result<String, String> {
    Ok(format!(
        "{var} {} {}",
        if eq { "==" } else { "!=" },
        quote(value)?
    ))
}

fn negate_if(eq: bool, s: String) -> String {
    if eq { s } else { format!("!({s})") }
}

fn cond(e: &Expr) -> Result<Cond, String> {
    match e {
        Expr::Bool(true) => Ok(Cond::True),
        Expr::Bool(false) => Ok(Cond::Expr("false".into())),
        Expr::Call(f, args) if f.eq_ignore_ascii_case("success") && args.is_empty() => {
            Ok(Cond::True)
        }
        Expr::Call(f, _)
            if ["always", "failure", "cancelled"]
                .iter()
                .any(|s| f.eq_ignore_ascii_case(s)) =>
        {
            Err(format!(
                "`{f}()` has no sykli equivalent: a task runs only when its dependencies passed"
            ))
        }
        Expr::Call(f, args) if f.eq_ignore_ascii_case("startsWith") => match args.as_slice() {
            [Expr::Path(p), Expr::Str(prefix)] if p == "github.ref" => starts_with_ref(prefix),
            _ => Err("only `startsWith(github.ref, '...')` has a sykli equivalent".into()),
        },
        Expr::Call(f, _) => Err(format!("the function `{f}` has no sykli equivalent")),
        Expr::Not(inner) => match cond(inner)? {
            Cond::True => Err("`!success()` has no sykli equivalent".into()),
            Cond::Expr(s) => Ok(Cond::Expr(format!("!({s})"))),
        },
        Expr::And(a, b) => Ok(match (cond(a)?, cond(b)?) {
            (Cond::True, x) | (x, Cond::True) => x,
            (Cond::Expr(a), Cond::Expr(b)) => Cond::Expr(format!("({a}) && ({b})")),
        }),
        Expr::Or(a, b) => Ok(match (cond(a)?, cond(b)?) {
            (Cond::True, _) | (_, Cond::True) => Cond::True,
            (Cond::Expr(a), Cond::Expr(b)) => Cond::Expr(format!("({a}) || ({b})")),
        }),
        Expr::Cmp(eq, a, b) => match (a.as_ref(), b.as_ref()) {
            (Expr::Path(p), Expr::Str(s)) | (Expr::Str(s), Expr::Path(p)) => {
                compare(p, *eq, s).map(Cond::Expr)
            }
            _ => Err("only comparisons of a `github` value with a string translate".into()),
        },
        Expr::Path(p) => Err(format!("`{p}` has no sykli equivalent")),
        Expr::Str(_) | Expr::Num(_) | Expr::Null => {
            Err("a bare literal has no sykli equivalent".into())
        }
    }
}

fn compare(path: &str, eq: bool, value: &str) -> Result<String, String> {
    match path {
        "github.ref" => {
            if let Some(b) = value.strip_prefix("refs/heads/") {
                cmp("branch", eq, b)
            } else if let Some(t) = value.strip_prefix("refs/tags/") {
                cmp("tag", eq, t)
            } else {
                Err(format!(
                    "`github.ref` compared with {value:?}, which is neither refs/heads/ nor refs/tags/"
                ))
            }
        }
        "github.ref_name" => Ok(negate_if(
            eq,
            format!(
                "({}) || ({})",
                cmp("branch", true, value)?,
                cmp("tag", true, value)?
            ),
        )),
        "github.ref_type" => match value {
            "tag" => Ok(cmp("tag", !eq, "")?),
            "branch" => Ok(cmp("tag", eq, "")?),
            _ => Err(format!("`github.ref_type` is never {value:?}")),
        },
        "github.event_name" => cmp("event", eq, value),
        other => Err(format!("`{other}` has no sykli equivalent")),
    }
}

fn starts_with_ref(prefix: &str) -> Result<Cond, String> {
    let glob = |var: &str, p: &str, any: &str| -> Result<String, String> {
        if p.contains(['*', '?']) {
            return Err(format!("the prefix {p:?} holds glob characters"));
        }
        if p.is_empty() {
            return Ok(format!("{var} != ''"));
        }
        Ok(format!("{var} matches {}", quote(&format!("{p}{any}"))?))
    };
    if let Some(p) = prefix.strip_prefix("refs/tags/") {
        glob("tag", p, "*").map(Cond::Expr)
    } else if let Some(p) = prefix.strip_prefix("refs/heads/") {
        glob("branch", p, "**").map(Cond::Expr)
    } else {
        Err(format!(
            "`startsWith(github.ref, {prefix:?})`: neither refs/heads/ nor refs/tags/"
        ))
    }
}

/// A recursive-descent parser of the expression subset (with GitHub's precedence: `!`,
/// then comparisons, then `&&`, then `||`).
struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser { s, at: 0 }
    }

    fn parse(mut self) -> Result<Expr, String> {
        let e = self.or()?;
        self.ws();
        if self.at < self.s.len() {
            return Err(format!(
                "unexpected `{}` at column {}",
                &self.s[self.at..],
                self.at + 1
            ));
        }
        Ok(e)
    }

    fn ws(&mut self) {
        while self.s[self.at..].starts_with(char::is_whitespace) {
            self.at += self.s[self.at..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.at..].starts_with(tok) {
            self.at += tok.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.cmp()?;
        while self.eat("&&") {
            e = Expr::And(Box::new(e), Box::new(self.cmp()?));
        }
        Ok(e)
    }

    fn cmp(&mut self) -> Result<Expr, String> {
        let a = self.unary()?;
        for (tok, eq) in [("==", true), ("!=", false)] {
            if self.eat(tok) {
                let b = self.unary()?;
                return Ok(Expr::Cmp(eq, Box::new(a), Box::new(b)));
            }
        }
        for tok in ["<=", ">=", "<", ">"] {
            if self.eat(tok) {
                return Err(format!("the comparison `{tok}` has no sykli equivalent"));
            }
        }
        Ok(a)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        self.ws();
        let rest = &self.s[self.at..];
        if self.eat("(") {
            let e = self.or()?;
            if !self.eat(")") {
                return Err(format!("a `(` is not closed at column {}", self.at + 1));
            }
            return Ok(e);
        }
        if rest.starts_with('\'') {
            // GitHub strings: single quotes, '' for a quote.
            let mut out = String::new();
            let mut i = self.at + 1;
            loop {
                let Some(c) = self.s[i..].chars().next() else {
                    return Err("a string is not closed".into());
                };
                i += c.len_utf8();
                if c == '\'' {
                    if self.s[i..].starts_with('\'') {
                        out.push('\'');
                        i += 1;
                        continue;
                    }
                    break;
                }
                out.push(c);
            }
            self.at = i;
            return Ok(Expr::Str(out));
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*')))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(match rest.chars().next() {
                Some(c) => format!("unexpected `{c}` at column {}", self.at + 1),
                None => "the expression ends too early".into(),
            });
        }
        let word = &rest[..len];
        self.at += len;
        if self.eat("(") {
            let mut args = Vec::new();
            if !self.eat(")") {
                loop {
                    args.push(self.or()?);
                    if self.eat(")") {
                        break;
                    }
                    if !self.eat(",") {
                        return Err(format!("expected `,` or `)` at column {}", self.at + 1));
                    }
                }
            }
            return Ok(Expr::Call(word.to_owned(), args));
        }
        Ok(match word {
            "true" => Expr::Bool(true),
            "false" => Expr::Bool(false),
            "null" => Expr::Null,
            w if w.starts_with(|c: char| c.is_ascii_digit() || c == '-') => Expr::Num(w.into()),
            w => Expr::Path(w.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn branch_tag_and_event_conditions_translate() {
        let ok = |s: &str| translate(s).unwrap().unwrap();
        assert_eq!(ok("github.ref == 'refs/heads/main'"), "branch == 'main'");
        assert_eq!(ok("${{ github.ref != 'refs/tags/v1' }}"), "tag != 'v1'");
        assert_eq!(ok("startsWith(github.ref, 'refs/tags/')"), "tag != ''");
        assert_eq!(
            ok("startsWith(github.ref, 'refs/tags/v')"),
            "tag matches 'v*'"
        );
        assert_eq!(
            ok("startsWith(github.ref, 'refs/heads/release/')"),
            "branch matches 'release/**'"
        );
        assert_eq!(
            ok("github.event_name == 'push' && github.ref == 'refs/heads/main'"),
            "(event == 'push') && (branch == 'main')"
        );
        assert_eq!(
            ok("success() && (github.ref_type == 'tag' || github.event_name != 'pull_request')"),
            "(tag != '') || (event != 'pull_request')"
        );
        assert_eq!(
            ok("!(github.ref_name == 'main')"),
            "!((branch == 'main') || (tag == 'main'))"
        );
        assert_eq!(translate("success()").unwrap(), None);
    }

    #[test]
    fn what_has_no_equivalent_is_an_error_saying_why() {
        let err = |s: &str| translate(s).unwrap_err();
        assert!(err("always()").contains("`always()` has no sykli equivalent"));
        assert!(
            err(
                "github.ref == 'refs/heads/main' && contains(github.event.head_commit.message, 'x')"
            )
            .contains("`contains`")
        );
        assert!(err("env.DEPLOY == 'yes'").contains("`env.DEPLOY`"));
        assert!(err("github.ref == 'refs/heads/main' &&").contains("ends too early"));
        assert!(err("github.run_number > 3").contains("`>`"));
    }
}
