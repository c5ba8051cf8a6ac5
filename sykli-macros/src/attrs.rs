//! Parsing of `#[sykli::task(...)]` attributes into [`TaskAttrs`].
//!
//! Every value is checked here, at compile time, with an error spanned at the offending token.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, LitBool, LitInt, LitStr, Path, Token, braced, bracketed};

/// The attribute names `#[sykli::task]` accepts, for the "unknown attribute" message.
const KNOWN: &[&str] = &[
    "name",
    "cmd",
    "after",
    "inputs",
    "outputs",
    "env",
    "timeout",
    "retry",
    "when",
    "requires",
    "secrets",
    "remote",
    "prefer",
    "target",
    "workdir",
    "container",
    "no_cache",
    "sandbox",
    "background",
    "ready_timeout",
    "tests",
];

/// The values `tests = ".."` accepts (the runtime's `TestFormat` names; a proc-macro crate
/// cannot depend on the runtime).
const TEST_FORMATS: &[&str] = &["cargo", "go-json", "tap"];

/// One entry of `after = [...]`.
pub enum Dep {
    /// A task function, resolved at compile time through its hidden marker type.
    Path(Path),
    /// A task name, checked when the pipeline is validated.
    Name(LitStr),
}

/// `prefer = Remote | Local`.
#[derive(Clone, Copy)]
pub enum Prefer {
    Remote,
    Local,
}

/// Everything `#[sykli::task(...)]` may say about a task.
#[derive(Default)]
pub struct TaskAttrs {
    pub name: Option<LitStr>,
    pub cmd: Option<LitStr>,
    pub after: Vec<Dep>,
    pub inputs: Vec<LitStr>,
    pub outputs: Vec<(String, LitStr)>,
    pub env: Vec<(LitStr, LitStr)>,
    pub timeout_secs: Option<u64>,
    pub retry: Option<u32>,
    pub when: Option<LitStr>,
    pub requires: Vec<LitStr>,
    pub secrets: Vec<LitStr>,
    pub remote: bool,
    pub prefer: Option<Prefer>,
    pub target: Option<LitStr>,
    pub workdir: Option<LitStr>,
    pub container: Option<LitStr>,
    pub no_cache: bool,
    /// `sandbox`: run hermetically (default sandbox settings).
    pub sandbox: bool,
    /// `background = "ready check"`: a run-scoped host service.
    pub background: Option<LitStr>,
    /// `ready_timeout = 60` or `"2m"`, only with `background`.
    pub ready_timeout: Option<u64>,
    /// `tests = "cargo" | "go-json" | "tap"`: the test output format the command prints.
    pub tests: Option<LitStr>,
}

impl Parse for TaskAttrs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut attrs = TaskAttrs::default();
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
            let k = key.to_string();
            if !KNOWN.contains(&k.as_str()) {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown sykli task attribute `{k}`; expected one of: {}",
                        KNOWN.join(", ")
                    ),
                ));
            }
            if seen.contains(&k) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("sykli task attribute `{k}` is given more than once"),
                ));
            }
            seen.push(k.clone());
            attrs.parse_value(&key, &k, input)?;
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        if attrs.ready_timeout.is_some() && attrs.background.is_none() {
            return Err(syn::Error::new(
                proc_macro2::Span::call_site(),
                "`ready_timeout` goes with `background = \"<ready check>\"`",
            ));
        }
        Ok(attrs)
    }
}

impl TaskAttrs {
    fn parse_value(&mut self, key: &Ident, k: &str, input: ParseStream) -> syn::Result<()> {
        // Flags: `remote`, `no_cache`, `sandbox`, or `remote = true`.
        if k == "remote" || k == "no_cache" || k == "sandbox" {
            let value = if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                input.parse::<LitBool>()?.value
            } else {
                true
            };
            match k {
                "remote" => self.remote = value,
                "sandbox" => self.sandbox = value,
                _ => self.no_cache = value,
            }
            return Ok(());
        }
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("sykli task attribute `{k}` needs a value: `{k} = ...`"),
            ));
        }
        input.parse::<Token![=]>()?;
        match k {
            "name" => {
                let lit = non_empty(input.parse::<LitStr>()?, "name")?;
                self.name = Some(lit);
            }
            "cmd" => self.cmd = Some(non_empty(input.parse::<LitStr>()?, "cmd")?),
            "when" => {
                let lit = non_empty(input.parse::<LitStr>()?, "when")?;
                if let Err(e) = crate::condition::parse(&lit.value()) {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!("invalid `when` condition: {e}"),
                    ));
                }
                self.when = Some(lit);
            }
            "target" => self.target = Some(non_empty(input.parse::<LitStr>()?, "target")?),
            "workdir" => self.workdir = Some(non_empty(input.parse::<LitStr>()?, "workdir")?),
            "container" => self.container = Some(non_empty(input.parse::<LitStr>()?, "container")?),
            "tests" => {
                let lit: LitStr = input.parse()?;
                if !TEST_FORMATS.contains(&lit.value().as_str()) {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!(
                            "unknown test output format \"{}\" in `tests` (expected one of: {})",
                            lit.value(),
                            TEST_FORMATS.join(", ")
                        ),
                    ));
                }
                self.tests = Some(lit);
            }
            "after" => {
                let content;
                bracketed!(content in input);
                let deps = Punctuated::<DepSyntax, Token![,]>::parse_terminated(&content)?;
                self.after = deps.into_iter().map(|d| d.0).collect();
            }
            "inputs" => self.inputs = string_list(input, "inputs")?,
            "requires" => self.requires = string_list(input, "requires")?,
            "secrets" => self.secrets = string_list(input, "secrets")?,
            "outputs" => {
                if input.peek(syn::token::Bracket) {
                    self.outputs = string_list(input, "outputs")?
                        .into_iter()
                        .enumerate()
                        .map(|(i, p)| (format!("output_{i}"), p))
                        .collect();
                } else {
                    self.outputs = string_map(input, "outputs")?
                        .into_iter()
                        .map(|(k, v)| (k.value(), v))
                        .collect();
                }
            }
            "env" => self.env = string_map(input, "env")?,
            "timeout" => self.timeout_secs = Some(parse_timeout(input, "timeout")?),
            "background" => {
                self.background = Some(non_empty(input.parse::<LitStr>()?, "background")?)
            }
            "ready_timeout" => self.ready_timeout = Some(parse_timeout(input, "ready_timeout")?),
            "retry" => {
                let lit: LitInt = input.parse()?;
                let n = lit.base10_parse::<u32>().map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        "`retry` must be a whole number of extra attempts, e.g. `retry = 2`",
                    )
                })?;
                self.retry = Some(n);
            }
            "prefer" => {
                let (value, span) = if input.peek(LitStr) {
                    let lit: LitStr = input.parse()?;
                    (lit.value().to_ascii_lowercase(), lit.span())
                } else {
                    let path: Path = input.parse()?;
                    let last = path.segments.last().map(|s| s.ident.to_string());
                    (
                        last.unwrap_or_default().to_ascii_lowercase(),
                        syn::spanned::Spanned::span(&path),
                    )
                };
                self.prefer = Some(match value.as_str() {
                    "remote" => Prefer::Remote,
                    "local" => Prefer::Local,
                    _ => {
                        return Err(syn::Error::new(
                            span,
                            "`prefer` must be `Remote` or `Local`",
                        ));
                    }
                });
            }
            _ => unreachable!("every KNOWN attribute is handled"),
        }
        Ok(())
    }
}

/// `lint`, `crate::checks::fmt` or `"other-name"`.
struct DepSyntax(Dep);

impl Parse for DepSyntax {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(LitStr) {
            let lit = non_empty(input.parse::<LitStr>()?, "after")?;
            Ok(DepSyntax(Dep::Name(lit)))
        } else if input.peek(Ident) || input.peek(Token![::]) || input.peek(Token![crate]) {
            Ok(DepSyntax(Dep::Path(input.parse()?)))
        } else {
            Err(input.error(
                "`after` entries must be task functions (`lint`, `checks::fmt`) or task names (\"lint\")",
            ))
        }
    }
}

fn non_empty(lit: LitStr, what: &str) -> syn::Result<LitStr> {
    if lit.value().is_empty() {
        Err(syn::Error::new(
            lit.span(),
            format!("`{what}` must not be empty"),
        ))
    } else {
        Ok(lit)
    }
}

/// `["a", "b"]`.
fn string_list(input: ParseStream, what: &str) -> syn::Result<Vec<LitStr>> {
    if !input.peek(syn::token::Bracket) {
        return Err(input.error(format!(
            "`{what}` must be a list of strings, e.g. `{what} = [\"a\", \"b\"]`"
        )));
    }
    let content;
    bracketed!(content in input);
    let items = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
    items.into_iter().map(|l| non_empty(l, what)).collect()
}

/// `{"key": "value", ...}`.
fn string_map(input: ParseStream, what: &str) -> syn::Result<Vec<(LitStr, LitStr)>> {
    if !input.peek(syn::token::Brace) {
        return Err(input.error(format!(
            "`{what}` must be a map of strings, e.g. `{what} = {{\"KEY\": \"value\"}}`"
        )));
    }
    let content;
    braced!(content in input);
    let mut out: Vec<(LitStr, LitStr)> = Vec::new();
    while !content.is_empty() {
        let key: LitStr = content.parse()?;
        if key.value().is_empty() {
            return Err(syn::Error::new(
                key.span(),
                format!("`{what}` keys must not be empty"),
            ));
        }
        if out.iter().any(|(k, _)| k.value() == key.value()) {
            return Err(syn::Error::new(
                key.span(),
                format!("`{what}` key \"{}\" is given more than once", key.value()),
            ));
        }
        content.parse::<Token![:]>()?;
        let value: LitStr = content.parse()?;
        out.push((key, value));
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(out)
}

/// `timeout = "5m"` (humantime syntax) or `timeout = 300` (seconds); whole seconds, rounded up.
fn parse_timeout(input: ParseStream, what: &str) -> syn::Result<u64> {
    if input.peek(LitInt) {
        let lit: LitInt = input.parse()?;
        return match lit.base10_parse::<u64>() {
            Ok(0) | Err(_) => Err(syn::Error::new(
                lit.span(),
                format!("`{what}` in seconds must be a whole number of at least 1"),
            )),
            Ok(n) => Ok(n),
        };
    }
    let lit: LitStr = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "`{what}` must be a duration string like \"90s\" or \"5m\", or a number of seconds"
            ),
        )
    })?;
    let d = humantime::parse_duration(&lit.value()).map_err(|e| {
        syn::Error::new(
            lit.span(),
            format!(
                "invalid `{what}` \"{}\": {e}; expected a duration like \"90s\", \"5m\" or \"1h 30m\"",
                lit.value()
            ),
        )
    })?;
    if d.is_zero() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{what}` must be at least one second"),
        ));
    }
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Ok(secs)
}
