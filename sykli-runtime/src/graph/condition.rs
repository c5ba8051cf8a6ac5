//! The condition language of `when` (and its upstream alias `condition`).
//!
//! One small expression language, parsed by a tokenizer and a recursive-descent parser:
//!
//! ```text
//! expr    := or
//! or      := and (("||" | "or") and)*
//! and     := unary (("&&" | "and") unary)*
//! unary   := ("!" | "not") unary | primary
//! primary := "(" expr ")"
//!          | "matches" "(" operand "," operand ")"      upstream engine form
//!          | IDENT ":" WORD                             shorthand: branch:main, tag:v*
//!          | operand (("==" | "!=" | "matches" | "=~") operand)?
//! operand := IDENT | 'string' | "string" | true | false
//! ```
//!
//! Variables: `branch`, `tag`, `event`, `ci`, `pr_number`, `platform`, `runner`. A bare
//! variable is true when it is set and non-empty (`ci` when the run is in CI). `matches` and
//! `=~` take a glob: `**` matches anything, `*` anything but `/`, `?` one character.
//! Strings have no escapes: use the other quote to include one.
//!
//! ```
//! use sykli_runtime::graph::condition::{parse, ConditionContext};
//! let c = parse("branch == 'main' && !tag").unwrap();
//! let ctx = ConditionContext { branch: Some("main".into()), ..Default::default() };
//! assert!(c.evaluate(&ctx));
//! assert_eq!(c.to_string(), "branch == 'main' && !tag");
//! ```

use std::fmt;

/// The facts a condition is evaluated against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionContext {
    /// Current branch, e.g. `main`.
    pub branch: Option<String>,
    /// Current tag, e.g. `v1.2.0`.
    pub tag: Option<String>,
    /// Triggering event, e.g. `push`, `pull_request`.
    pub event: Option<String>,
    /// Pull request number, when the run is for one.
    pub pr_number: Option<String>,
    /// Whether the run happens in CI.
    pub ci: bool,
    /// Operating system, e.g. `linux`.
    pub platform: Option<String>,
    /// Name of the runner or worker.
    pub runner: Option<String>,
}

/// A variable a condition may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Var {
    /// `branch`
    Branch,
    /// `tag`
    Tag,
    /// `event`
    Event,
    /// `ci` (a boolean)
    Ci,
    /// `pr_number`
    PrNumber,
    /// `platform`
    Platform,
    /// `runner`
    Runner,
}

impl Var {
    /// Every variable, in documentation order.
    pub const ALL: [Var; 7] = [
        Var::Branch,
        Var::Tag,
        Var::Event,
        Var::Ci,
        Var::PrNumber,
        Var::Platform,
        Var::Runner,
    ];

    /// The identifier as written in a condition.
    pub fn as_str(self) -> &'static str {
        match self {
            Var::Branch => "branch",
            Var::Tag => "tag",
            Var::Event => "event",
            Var::Ci => "ci",
            Var::PrNumber => "pr_number",
            Var::Platform => "platform",
            Var::Runner => "runner",
        }
    }

    fn from_ident(s: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A variable.
    Var(Var),
    /// A string literal.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `matches` / `=~`: the right side is a glob.
    Matches,
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A lone operand: a variable is true when set and non-empty; `true`/`false` as is; a
    /// string when non-empty.
    Value(Operand),
    /// `left op right`.
    Compare {
        /// Left side.
        left: Operand,
        /// Operator.
        op: CompareOp,
        /// Right side (the glob for `matches`).
        right: Operand,
    },
    /// `!c`
    Not(Box<Condition>),
    /// `a && b`
    And(Box<Condition>, Box<Condition>),
    /// `a || b`
    Or(Box<Condition>, Box<Condition>),
}

/// A condition that does not parse, with the 1-based column (in characters) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column}\n  {source_text}\n  {caret}", caret = self.caret())]
pub struct ConditionError {
    /// What was expected or found, e.g. `expected a value after "=="`.
    pub message: String,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// The whole condition as written.
    pub source_text: String,
}

impl ConditionError {
    /// The message and column on one line, without the source and caret.
    pub fn summary(&self) -> String {
        format!("{} at column {}", self.message, self.column)
    }

    fn caret(&self) -> String {
        format!("{}^", " ".repeat(self.column.saturating_sub(1)))
    }
}

/// Parses a condition.
pub fn parse(src: &str) -> Result<Condition, ConditionError> {
    let mut p = Parser {
        src,
        pos: 0,
        depth: 0,
    };
    if p.peek()?.tok == Tok::End {
        return Err(p.error_at(p.pos, "expected a condition, found nothing".into()));
    }
    let c = p.expr()?;
    let t = p.peek()?;
    if t.tok != Tok::End {
        return Err(p.error_at(
            t.start,
            format!("expected `&&`, `||` or the end, found {}", t.tok.describe()),
        ));
    }
    Ok(c)
}

impl Condition {
    /// Evaluates the condition against the run's facts.
    pub fn evaluate(&self, ctx: &ConditionContext) -> bool {
        match self {
            Condition::Value(o) => value_of(o, ctx).truthy(),
            Condition::Compare { left, op, right } => {
                let l = value_of(left, ctx);
                let r = value_of(right, ctx);
                match op {
                    CompareOp::Eq => l.equals(&r),
                    CompareOp::Ne => !l.equals(&r),
                    CompareOp::Matches => glob_match(&r.text(), &l.text()),
                }
            }
            Condition::Not(c) => !c.evaluate(ctx),
            Condition::And(a, b) => a.evaluate(ctx) && b.evaluate(ctx),
            Condition::Or(a, b) => a.evaluate(ctx) || b.evaluate(ctx),
        }
    }

    /// The variables this condition reads.
    pub fn variables(&self) -> Vec<Var> {
        let mut out = Vec::new();
        self.collect_vars(&mut out);
        out
    }

    fn collect_vars(&self, out: &mut Vec<Var>) {
        let mut push = |o: &Operand| {
            if let Operand::Var(v) = o
                && !out.contains(v)
            {
                out.push(*v);
            }
        };
        match self {
            Condition::Value(o) => push(o),
            Condition::Compare { left, right, .. } => {
                push(left);
                push(right);
            }
            Condition::Not(c) => c.collect_vars(out),
            Condition::And(a, b) | Condition::Or(a, b) => {
                a.collect_vars(out);
                b.collect_vars(out);
            }
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Condition::Or(..) => 1,
            Condition::And(..) => 2,
            Condition::Not(_) => 3,
            Condition::Compare { .. } => 4,
            Condition::Value(_) => 5,
        }
    }

    fn fmt_child(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

/// Canonical rendering in the SDK form (`==`, `!=`, `matches`, `&&`, `||`, `!`, single quotes),
/// with only the parentheses needed; parsing it gives back the same condition.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Value(o) => write!(f, "{o}"),
            Condition::Compare { left, op, right } => {
                let op = match op {
                    CompareOp::Eq => "==",
                    CompareOp::Ne => "!=",
                    CompareOp::Matches => "matches",
                };
                write!(f, "{left} {op} {right}")
            }
            Condition::Not(c) => {
                f.write_str("!")?;
                c.fmt_child(f, 3)
            }
            Condition::And(a, b) => {
                a.fmt_child(f, 2)?;
                f.write_str(" && ")?;
                b.fmt_child(f, 3)
            }
            Condition::Or(a, b) => {
                a.fmt_child(f, 1)?;
                f.write_str(" || ")?;
                b.fmt_child(f, 2)
            }
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Var(v) => f.write_str(v.as_str()),
            Operand::Bool(b) => write!(f, "{b}"),
            Operand::Str(s) if s.contains('\'') => write!(f, "\"{s}\""),
            Operand::Str(s) => write!(f, "'{s}'"),
        }
    }
}

enum Val<'a> {
    Str(&'a str),
    Bool(bool),
}

impl Val<'_> {
    fn truthy(&self) -> bool {
        match self {
            Val::Str(s) => !s.is_empty(),
            Val::Bool(b) => *b,
        }
    }

    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Val::Str(s) => (*s).into(),
            Val::Bool(b) => b.to_string().into(),
        }
    }

    fn equals(&self, other: &Val<'_>) -> bool {
        match (self, other) {
            (Val::Bool(a), Val::Bool(b)) => a == b,
            _ => self.text() == other.text(),
        }
    }
}

fn value_of<'a>(o: &'a Operand, ctx: &'a ConditionContext) -> Val<'a> {
    let opt = |s: &'a Option<String>| Val::Str(s.as_deref().unwrap_or(""));
    match o {
        Operand::Str(s) => Val::Str(s),
        Operand::Bool(b) => Val::Bool(*b),
        Operand::Var(v) => match v {
            Var::Branch => opt(&ctx.branch),
            Var::Tag => opt(&ctx.tag),
            Var::Event => opt(&ctx.event),
            Var::Ci => Val::Bool(ctx.ci),
            Var::PrNumber => opt(&ctx.pr_number),
            Var::Platform => opt(&ctx.platform),
            Var::Runner => opt(&ctx.runner),
        },
    }
}

/// Matches `text` against a glob: `**` any characters, `*` any characters but `/`, `?` exactly
/// one character; everything else literally. Runs in O(len(glob) * len(text)).
pub fn glob_match(glob: &str, text: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        AnyNoSlash,
        One,
        Lit(char),
    }
    let mut pat = Vec::new();
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                pat.push(P::Any);
            }
            '*' => pat.push(P::AnyNoSlash),
            '?' => pat.push(P::One),
            c => pat.push(P::Lit(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // reach[j]: the pattern prefix processed so far matches text[..j].
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for p in pat {
        let mut next = vec![false; text.len() + 1];
        match p {
            P::Any | P::AnyNoSlash => {
                let mut on = false;
                for j in 0..=text.len() {
                    if reach[j] {
                        on = true;
                    }
                    next[j] = on;
                    if p == P::AnyNoSlash && j < text.len() && text[j] == '/' {
                        on = false;
                    }
                }
            }
            P::One | P::Lit(_) => {
                for j in 0..text.len() {
                    if reach[j] && (p == P::One || p == P::Lit(text[j])) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[text.len()]
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Colon,
    Not,
    And,
    Or,
    Eq,
    Ne,
    Tilde,
    Ident(String),
    Str(String),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Colon => "`:`".into(),
            Tok::Not => "`!`".into(),
            Tok::And => "`&&`".into(),
            Tok::Or => "`||`".into(),
            Tok::Eq => "`==`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::Tilde => "`=~`".into(),
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::End => "the end".into(),
        }
    }
}

struct Token {
    tok: Tok,
    /// Byte offset of the token's first character.
    start: usize,
    /// Byte offset just past the token.
    end: usize,
}

/// Nesting deeper than this is rejected, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    src: &'a str,
    /// Byte offset of the next unread character.
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn column(&self, byte: usize) -> usize {
        self.src[..byte.min(self.src.len())].chars().count() + 1
    }

    fn error_at(&self, byte: usize, message: String) -> ConditionError {
        ConditionError {
            message,
            column: self.column(byte),
            source_text: self.src.to_string(),
        }
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        let b = self.src.as_bytes();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    }

    /// Lexes the token at the current position without consuming it.
    fn peek(&self) -> Result<Token, ConditionError> {
        let start = self.skip_ws(self.pos);
        let rest = &self.src[start..];
        let mut chars = rest.chars();
        let Some(c) = chars.next() else {
            return Ok(Token {
                tok: Tok::End,
                start,
                end: start,
            });
        };
        let two = |tok| {
            Ok(Token {
                tok,
                start,
                end: start + 2,
            })
        };
        let one = |tok| {
            Ok(Token {
                tok,
                start,
                end: start + 1,
            })
        };
        match c {
            '(' => one(Tok::LParen),
            ')' => one(Tok::RParen),
            ',' => one(Tok::Comma),
            ':' => one(Tok::Colon),
            '&' if rest.starts_with("&&") => two(Tok::And),
            '|' if rest.starts_with("||") => two(Tok::Or),
            '=' if rest.starts_with("==") => two(Tok::Eq),
            '=' if rest.starts_with("=~") => two(Tok::Tilde),
            '!' if rest.starts_with("!=") => two(Tok::Ne),
            '!' => one(Tok::Not),
            '\'' | '"' => match rest[1..].find(c) {
                Some(len) => Ok(Token {
                    tok: Tok::Str(rest[1..1 + len].to_string()),
                    start,
                    end: start + len + 2,
                }),
                None => Err(self.error_at(start, format!("unterminated string (missing {c})"))),
            },
            c if c.is_ascii_alphabetic() || c == '_' => {
                let len = rest
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .unwrap_or(rest.len());
                let word = &rest[..len];
                let tok = match word {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Ident(word.to_string()),
                };
                Ok(Token {
                    tok,
                    start,
                    end: start + len,
                })
            }
            '&' => Err(self.error_at(start, "expected `&&`, found a single `&`".into())),
            '|' => Err(self.error_at(start, "expected `||`, found a single `|`".into())),
            '=' => Err(self.error_at(start, "expected `==` or `=~`, found a single `=`".into())),
            other => Err(self.error_at(start, format!("unexpected character `{other}`"))),
        }
    }

    fn next(&mut self) -> Result<Token, ConditionError> {
        let t = self.peek()?;
        self.pos = t.end;
        Ok(t)
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<Token, ConditionError> {
        let t = self.peek()?;
        if t.tok == want {
            self.pos = t.end;
            Ok(t)
        } else {
            Err(self.error_at(
                t.start,
                format!("expected {what}, found {}", t.tok.describe()),
            ))
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(at, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    // A chain `a && b && c` nests to the left, one level per operator: each operator counts
    // towards the depth limit, so evaluating, printing and dropping the tree stay shallow.
    fn expr(&mut self) -> Result<Condition, ConditionError> {
        let entered = self.depth;
        let mut left = self.and()?;
        while self.peek()?.tok == Tok::Or {
            let op = self.next()?;
            self.enter(op.start)?;
            let right = self.and()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        self.depth = entered;
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, ConditionError> {
        let entered = self.depth;
        let mut left = self.unary()?;
        while self.peek()?.tok == Tok::And {
            let op = self.next()?;
            self.enter(op.start)?;
            let right = self.unary()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        self.depth = entered;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Condition, ConditionError> {
        let t = self.peek()?;
        if t.tok == Tok::Not {
            self.next()?;
            self.enter(t.start)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, ConditionError> {
        let t = self.peek()?;
        match &t.tok {
            Tok::LParen => {
                self.next()?;
                self.enter(t.start)?;
                let inner = self.expr()?;
                self.depth -= 1;
                self.expect(Tok::RParen, "`)`")?;
                Ok(inner)
            }
            Tok::Ident(w) if w == "matches" => {
                self.next()?;
                self.expect(Tok::LParen, "`(` after `matches`")?;
                let left = self.operand("a variable")?;
                self.expect(Tok::Comma, "`,`")?;
                let right = self.operand("a glob string")?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(Condition::Compare {
                    left,
                    op: CompareOp::Matches,
                    right,
                })
            }
            _ => {
                let left = self.operand("a condition")?;
                let t = self.peek()?;
                let op = match &t.tok {
                    Tok::Eq => CompareOp::Eq,
                    Tok::Ne => CompareOp::Ne,
                    Tok::Tilde => CompareOp::Matches,
                    Tok::Ident(w) if w == "matches" => CompareOp::Matches,
                    Tok::Colon => {
                        let Operand::Var(_) = left else {
                            return Err(self.error_at(
                                t.start,
                                "the `var:value` shorthand needs a variable before `:`".into(),
                            ));
                        };
                        self.next()?;
                        return self.shorthand(left);
                    }
                    _ => return Ok(Condition::Value(left)),
                };
                self.next()?;
                let what = if op == CompareOp::Matches {
                    "a glob string".to_string()
                } else {
                    format!("a value after {}", t.tok.describe())
                };
                let right = self.operand(&what)?;
                Ok(Condition::Compare { left, op, right })
            }
        }
    }

    /// `var:value`: the value runs to the next space or `)`; a glob when it has `*` or `?`.
    fn shorthand(&mut self, left: Operand) -> Result<Condition, ConditionError> {
        let start = self.pos;
        let t = self.peek()?;
        let value = if let (Tok::Str(s), true) = (&t.tok, t.start == start) {
            self.pos = t.end;
            s.clone()
        } else {
            let rest = &self.src[start..];
            let len = rest
                .find(|c: char| c.is_whitespace() || c == ')' || c == '(')
                .unwrap_or(rest.len());
            if len == 0 {
                return Err(self.error_at(start, "expected a value after `:`".into()));
            }
            self.pos = start + len;
            rest[..len].to_string()
        };
        let op = if value.contains(['*', '?']) {
            CompareOp::Matches
        } else {
            CompareOp::Eq
        };
        Ok(Condition::Compare {
            left,
            op,
            right: Operand::Str(value),
        })
    }

    fn operand(&mut self, what: &str) -> Result<Operand, ConditionError> {
        let t = self.peek()?;
        let o = match t.tok {
            Tok::Str(s) => Operand::Str(s),
            Tok::Ident(w) if w == "true" => Operand::Bool(true),
            Tok::Ident(w) if w == "false" => Operand::Bool(false),
            Tok::Ident(w) => match Var::from_ident(&w) {
                Some(v) => Operand::Var(v),
                None => {
                    let known: Vec<&str> = Var::ALL.iter().map(|v| v.as_str()).collect();
                    return Err(self.error_at(
                        t.start,
                        format!(
                            "unknown variable `{w}` (expected one of {})",
                            known.join(", ")
                        ),
                    ));
                }
            },
            other => {
                return Err(self.error_at(
                    t.start,
                    format!("expected {what}, found {}", other.describe()),
                ));
            }
        };
        self.pos = t.end;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ConditionContext {
        ConditionContext {
            branch: Some("release/1.2".into()),
            tag: None,
            event: Some("push".into()),
            pr_number: None,
            ci: true,
            platform: Some("linux".into()),
            runner: Some("r1".into()),
        }
    }

    fn eval(s: &str) -> bool {
        parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .evaluate(&ctx())
    }

    #[test]
    fn sdk_forms() {
        assert!(eval("branch matches 'release/*'"));
        assert!(!eval("branch == 'main'"));
        assert!(eval("branch != 'main'"));
        assert!(!eval("tag != ''"));
        assert!(eval("tag == ''"));
        assert!(eval("event == 'push'"));
        assert!(eval("ci == true"));
        assert!(!eval("ci == false"));
        assert!(eval("(branch matches 'release/*') && (ci == true)"));
        assert!(eval("(branch == 'main') || (event == 'push')"));
        assert!(eval("!(tag != '')"));
    }

    #[test]
    fn engine_forms() {
        assert!(eval("branch == \"release/1.2\" and not tag"));
        assert!(eval("matches(branch, \"release/**\") or false"));
        assert!(eval("branch =~ 'release/?.?'"));
        assert!(eval("branch:release/*"));
        assert!(!eval("branch:main"));
        assert!(eval("event:push && platform:linux"));
        assert!(eval("(branch:'release/1.2')"));
    }

    #[test]
    fn bare_variables_are_truthy_when_set() {
        assert!(eval("ci"));
        assert!(eval("branch"));
        assert!(!eval("tag"));
        assert!(!eval("pr_number"));
        assert!(eval("runner && platform == 'linux'"));
        assert!(eval("true"));
        assert!(!eval("false"));
    }

    #[test]
    fn precedence_and_over_or() {
        // false || (true && true)
        assert!(eval("tag || ci && branch"));
        // !binds tighter than &&
        assert!(!eval("!ci && ci"));
        assert_eq!(
            parse("a || b").unwrap_err().summary(),
            "unknown variable `a` (expected one of branch, tag, event, ci, pr_number, platform, runner) at column 1"
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("release/*", "release/1.2"));
        assert!(!glob_match("release/*", "release/1/2"));
        assert!(glob_match("release/**", "release/1/2"));
        assert!(glob_match("**", ""));
        assert!(glob_match("v?.*", "v1.20"));
        assert!(!glob_match("v?", "v10"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("ü?", "üß"));
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = parse("branch == 'main' && ").unwrap_err();
        assert_eq!(e.column, 21);
        assert!(
            e.message.contains("expected a condition, found the end"),
            "{e}"
        );
        let e = parse("branch == 'main' &&& tag").unwrap_err();
        assert_eq!(e.column, 20, "{e}");
        let e = parse("branch = 'main'").unwrap_err();
        assert_eq!(
            e.summary(),
            "expected `==` or `=~`, found a single `=` at column 8"
        );
        assert_eq!(
            e.to_string(),
            "expected `==` or `=~`, found a single `=` at column 8\n  branch = 'main'\n         ^"
        );
        let e = parse("(branch == 'x'").unwrap_err();
        assert_eq!(e.summary(), "expected `)`, found the end at column 15");
        let e = parse("branch == 'x").unwrap_err();
        assert_eq!(e.summary(), "unterminated string (missing ') at column 11");
        let e = parse("").unwrap_err();
        assert_eq!(e.column, 1);
        let e = parse("branch ==").unwrap_err();
        assert_eq!(
            e.summary(),
            "expected a value after `==`, found the end at column 10"
        );
        let e = parse("ci ci").unwrap_err();
        assert_eq!(
            e.summary(),
            "expected `&&`, `||` or the end, found `ci` at column 4"
        );
        let e = parse("é == 'x'").unwrap_err();
        assert_eq!(e.column, 1);
        let e = parse("ab ü").unwrap_err();
        assert_eq!(e.column, 1);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let s = format!("{}ci{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&s).unwrap_err().message.contains("nesting deeper"));
        let s = format!("{}ci", "!".repeat(10_000));
        assert!(parse(&s).is_err());
    }

    #[test]
    fn long_operator_chains_are_an_error_not_a_stack_overflow() {
        for op in [" && ", " || ", " and "] {
            let s = vec!["ci"; 100_000].join(op);
            let e = parse(&s).unwrap_err();
            assert!(e.message.contains("nesting deeper than 128"), "{e}");
        }
        let ok = vec!["ci"; 100].join(" && ");
        assert!(parse(&ok).unwrap().evaluate(&ctx()));
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        for (src, canon) in [
            ("branch == \"main\"", "branch == 'main'"),
            (
                "(branch == 'main') && (ci == true)",
                "branch == 'main' && ci == true",
            ),
            ("a_or_b", ""),
            (
                "(tag || ci) && !(event == 'x' || ci)",
                "(tag || ci) && !(event == 'x' || ci)",
            ),
            ("ci and (tag and branch)", "ci && (tag && branch)"),
            ("not matches(branch, 'v*')", "!branch matches 'v*'"),
            ("branch:main", "branch == 'main'"),
            ("tag == \"it's\"", "tag == \"it's\""),
        ] {
            let Ok(c) = parse(src) else {
                assert!(canon.is_empty(), "{src} should parse");
                continue;
            };
            assert_eq!(c.to_string(), canon, "{src}");
            assert_eq!(parse(&c.to_string()).unwrap(), c, "{src}");
        }
    }
}
