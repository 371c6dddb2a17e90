//! jq expressions (through jaq): compiled once when an endpoint file loads,
//! run per request on parsed replies.
//!
//! Every value an expression sees is a variable: `$auth`, `$path`,
//! `$query`, `$headers`, and one per call of the endpoint, named as the
//! call. Which call variables an expression names is read off its tokens,
//! so a call that uses another's reply waits for it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jaq_core::load::lex::{StrPart, Tok, Token};
use jaq_core::load::{Arena, File, Lexer, Loader};
use jaq_core::{Compiler, Ctx, Vars, data};
use jaq_json::Val;

use super::fast::Fast;
use super::need::Need;

/// The variables every expression may use besides the calls' own.
pub const REQUEST_VARS: [&str; 4] = ["auth", "path", "query", "headers"];

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// A compiled jq expression and the variables it reads, in the order
/// [`Expr::run`] expects their values.
pub struct Expr {
    filter: Filter,
    /// The same expression for the direct evaluator, when it takes it.
    fast: Option<Fast>,
    /// The variables it was compiled with, without `$`.
    vars: Vec<String>,
    /// The source, for errors.
    source: String,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expr")
            .field("source", &self.source)
            .field("direct", &self.fast.is_some())
            .field("vars", &self.vars)
            .finish()
    }
}

/// Why an expression did not compile: a syntax error or an unknown name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError(pub String);

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an expression failed on a request's values.
#[derive(Debug, Clone)]
pub struct RunError(pub String);

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

impl Expr {
    /// Compiles `code` with the request's variables and the calls named
    /// in `calls`. A variable that is neither is an error here, at load.
    pub fn compile(code: &str, calls: &BTreeSet<String>) -> Result<Self, ExprError> {
        let vars: Vec<String> = REQUEST_VARS
            .iter()
            .map(|v| (*v).to_owned())
            .chain(calls.iter().cloned())
            .collect();
        let dollar: Vec<String> = vars.iter().map(|v| format!("${v}")).collect();
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errors| ExprError(load_errors(&errors)))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .with_global_vars(dollar.iter().map(String::as_str))
            .compile(modules)
            .map_err(|errors| {
                let names: Vec<String> = errors
                    .iter()
                    .flat_map(|(_, undefined)| undefined.iter())
                    .map(|(name, kind)| format!("undefined {} `{name}`", kind.as_str()))
                    .collect();
                ExprError(names.join(", "))
            })?;
        Ok(Self {
            filter,
            fast: Fast::compile(code, &vars),
            vars,
            source: code.to_owned(),
        })
    }

    /// What it reads of each variable (by name) when run on `input` (a
    /// variable's value, by name, or a computed value: `None`); `None`
    /// when jaq runs it, which may read anything.
    pub fn needs(&self, input: Option<&str>) -> Option<BTreeMap<String, Need>> {
        let fast = self.fast.as_ref()?;
        let place = input
            .and_then(|name| self.vars.iter().position(|v| v == name))
            .and_then(super::need::input_of);
        let mut by_index = BTreeMap::new();
        super::need::collect(fast, place, &mut by_index);
        Some(
            by_index
                .into_iter()
                .filter_map(|(i, need)| Some((self.vars.get(i)?.clone(), need)))
                .collect(),
        )
    }

    /// Whether the direct evaluator runs it (jaq otherwise).
    pub fn is_direct(&self) -> bool {
        self.fast.is_some()
    }

    /// The calls `code` reads (`$name` tokens naming one of `calls`). A
    /// local binding that shadows a call's name counts too: that only
    /// orders the calls, it never misses a dependency.
    pub fn calls_read(code: &str, calls: &BTreeSet<String>) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        if let Ok(tokens) = Lexer::new(code).lex() {
            collect_vars(&tokens, calls, &mut found);
        }
        found
    }

    /// Runs the expression: `values` gives each variable's value by name
    /// (missing ones are `null`). Every output, in order.
    pub fn run<'a>(
        &self,
        input: Val,
        values: impl Fn(&str) -> Option<&'a Val>,
    ) -> Result<Vec<Val>, RunError> {
        let values = self.values(values);
        if let Some(fast) = &self.fast
            && let Ok(outputs) = fast.run(&input, &values)
        {
            return Ok(outputs);
        }
        self.run_jaq(input, values)
    }

    /// The expression run by jaq: the reference, and what runs whatever
    /// the direct evaluator does not take.
    fn run_jaq(&self, input: Val, values: Vec<Val>) -> Result<Vec<Val>, RunError> {
        let vars = Vars::new(values);
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, vars);
        self.filter
            .id
            .run((ctx, input))
            .map(jaq_core::unwrap_valr)
            .map(|out| out.map_err(|e| RunError(format!("`{}` failed: {e}", self.source))))
            .collect()
    }

    /// Writes the expression's one output as JSON straight into `out`
    /// when the direct evaluator takes it and it is an object; `false`
    /// (and `out` as it was) otherwise, for [`Self::run_one`] to do.
    pub fn render_object<'a>(
        &self,
        input: &Val,
        values: impl Fn(&str) -> Option<&'a Val>,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(fast) = &self.fast else {
            return false;
        };
        let values = self.values(values);
        let start = out.len();
        match fast.render(input, &values, out) {
            Ok(1) if out.get(start) == Some(&b'{') => true,
            _ => {
                out.truncate(start);
                false
            }
        }
    }

    /// Each variable's value, in the order the expression takes them.
    fn values<'a>(&self, values: impl Fn(&str) -> Option<&'a Val>) -> Vec<Val> {
        self.vars
            .iter()
            .map(|name| values(name).cloned().unwrap_or(Val::Null))
            .collect()
    }

    /// Runs the expression for exactly one output.
    pub fn run_one<'a>(
        &self,
        input: Val,
        values: impl Fn(&str) -> Option<&'a Val>,
    ) -> Result<Val, RunError> {
        let mut outputs = self.run(input, values)?;
        match outputs.len() {
            1 => Ok(outputs.pop().unwrap_or(Val::Null)),
            n => Err(RunError(format!(
                "`{}` gave {n} values where one was expected",
                self.source
            ))),
        }
    }
}

fn collect_vars(tokens: &[Token<&str>], calls: &BTreeSet<String>, found: &mut BTreeSet<String>) {
    for Token(text, tok) in tokens {
        match tok {
            Tok::Var => {
                if let Some(name) = text.strip_prefix('$')
                    && calls.contains(name)
                {
                    found.insert(name.to_owned());
                }
            }
            Tok::Block(inner) => collect_vars(inner, calls, found),
            Tok::Str(parts) => {
                for part in parts {
                    if let StrPart::Term(inner) = part {
                        collect_vars(std::slice::from_ref(inner), calls, found);
                    }
                }
            }
            _ => {}
        }
    }
}

fn load_errors<P>(errors: &jaq_core::load::Errors<&str, P>) -> String {
    use jaq_core::load::Error;
    let mut messages = Vec::new();
    for (_, error) in errors {
        match error {
            Error::Io(io) => messages.extend(io.iter().map(|(_, e)| e.clone())),
            Error::Lex(lex) => {
                messages.extend(lex.iter().map(|(expect, at)| {
                    format!("expected {} at `{}`", expect.as_str(), excerpt(at))
                }))
            }
            Error::Parse(parse) => {
                messages.extend(parse.iter().map(|(expect, at)| {
                    format!("expected {} at `{}`", expect.as_str(), excerpt(at))
                }))
            }
        }
    }
    if messages.is_empty() {
        "is not a valid jq expression".to_owned()
    } else {
        messages.join(", ")
    }
}

/// The first few characters where an error was found.
fn excerpt(at: &str) -> &str {
    let end = at.char_indices().nth(20).map_or(at.len(), |(i, _)| i);
    if at.is_empty() { "the end" } else { &at[..end] }
}

/// A value as text for a URL: strings as they are, numbers and booleans
/// printed, arrays joined by `,`; `None` for `null`.
pub fn as_text(value: &Val) -> Option<String> {
    match value {
        Val::Null => None,
        Val::TStr(bytes) | Val::BStr(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Val::Arr(items) => Some(
            items
                .iter()
                .filter_map(as_text)
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

/// A string value.
pub fn text(s: &str) -> Val {
    Val::utf8_str(s.to_owned().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn reads_the_calls_an_expression_names_and_nothing_else() {
        let calls = calls(&["orders", "users"]);
        let read = Expr::calls_read(
            r#"{a: $orders.x, b: "$users", c: "\($users.name)", d: $auth}"#,
            &calls,
        );
        assert_eq!(read, self::calls(&["orders", "users"]));
        assert!(Expr::calls_read("$auth.sub", &calls).is_empty());
    }

    #[test]
    fn compiles_once_and_runs_with_variables() {
        let expr =
            Expr::compile("[$orders.orders[] | .q] | add", &calls(&["orders"])).expect("compiles");
        let orders =
            jaq_json::read::parse_single(br#"{"orders":[{"q":2},{"q":3}]}"#).expect("json");
        let out = expr
            .run_one(Val::Null, |name| (name == "orders").then_some(&orders))
            .expect("runs");
        assert_eq!(out.to_string(), "5");
    }

    /// The direct evaluator gives what jaq gives, on every expression of
    /// the shipped endpoints' kind and on inputs that take each branch.
    #[test]
    fn the_direct_evaluator_agrees_with_jaq() {
        let vars = calls(&["a", "b", "m"]);
        let names: Vec<String> = REQUEST_VARS
            .iter()
            .map(|v| (*v).to_owned())
            .chain(vars.iter().cloned())
            .collect();
        let inputs = [
            r#"{"id":"u1","name":"Ada","orders":[{"id":"o1","sellerId":"u2","items":[{"quantity":2},{"quantity":3}]},{"id":"o2","sellerId":"u9","items":[]}],"unreadCount":4,"n":1.5}"#,
            r#"{"orders":[],"nickname":"ad"}"#,
            "null",
            r#"{"orders":null}"#,
        ];
        let m = val(r#"{"u2":{"id":"u2","name":"Bea"}}"#);
        let expressions = [
            "{id, name, email}",
            "{displayName: .name, n: .n, x: 1, s: \"text\", t: true, z: null}",
            ".orders | if . then [.[:1][] | {id, c: ([.items[].quantity] | add // 0)}] else null end",
            "[.orders[]? | .id]",
            ".orders[-1:]",
            ".orders[0].id",
            "[.orders[] | {id, seller: ($m[.sellerId] | if . then {id, name} else null end)}]",
            ".nickname // \"none\"",
            "(.orders | length), (.name | length)",
            "[.orders[] | select(.sellerId == \"u2\") | .id]",
            ".orders | map(.id)",
            "{a: (1, 2), b: .id}",
            ".id == $auth.sub",
            ".id != \"u1\"",
            "$a.name, $b",
            "if .unreadCount then .unreadCount else 0 end",
            "[.orders[].items[].quantity] | add",
            ".orders[]",
            // Outside the direct evaluator: jaq runs these.
            "[.orders[] | .sellerId as $s | $s]",
            ".n + 1",
        ];
        let auth = val(r#"{"sub":"u1","scopes":[]}"#);
        let a = val(r#"{"name":"A"}"#);
        for code in expressions {
            let expr = Expr::compile(code, &vars).expect("compiles");
            for input in inputs {
                let value = |name: &str| match name {
                    "auth" => Some(&auth),
                    "a" => Some(&a),
                    "m" => Some(&m),
                    _ => None,
                };
                let values: Vec<Val> = names
                    .iter()
                    .map(|n| value(n).cloned().unwrap_or(Val::Null))
                    .collect();
                let jaq = expr
                    .run_jaq(val(input), values.clone())
                    .map(|out| out.iter().map(|v| v.to_string()).collect::<Vec<_>>())
                    .map_err(|e| e.0);
                let direct = expr.fast.as_ref().map(|f| f.run(&val(input), &values));
                // Where it answers, it answers as jaq does (where it does
                // not, jaq answers).
                if let Some(Ok(out)) = direct {
                    let out: Vec<String> = out.iter().map(|v| v.to_string()).collect();
                    assert_eq!(Ok(out), jaq.clone(), "`{code}` on {input}");
                }
                // Written straight as JSON, it is jaq's outputs, printed.
                let mut written = Vec::new();
                if let Some(Ok(count)) = expr
                    .fast
                    .as_ref()
                    .map(|f| f.render(&val(input), &values, &mut written))
                {
                    let printed = jaq.clone().map(|outs| (outs.join(","), outs.len()));
                    let written = String::from_utf8(written).expect("UTF-8");
                    assert_eq!(
                        Ok((written, count)),
                        printed,
                        "`{code}` on {input}, written"
                    );
                }
                // Whatever path ran, `run` gives jaq's answer.
                let ran = expr
                    .run(val(input), value)
                    .map(|out| out.iter().map(|v| v.to_string()).collect::<Vec<_>>());
                assert_eq!(ran.map_err(|e| e.0), jaq, "`{code}` on {input}");
            }
        }
        // The shipped kinds of expression are all taken directly.
        for code in &expressions[..expressions.len() - 2] {
            assert!(
                Expr::compile(code, &vars).expect("compiles").fast.is_some(),
                "{code}"
            );
        }
    }

    fn val(json: &str) -> Val {
        jaq_json::read::parse_single(json.as_bytes()).expect("json")
    }

    #[test]
    fn unknown_variables_and_bad_syntax_are_load_errors() {
        let error = Expr::compile("$nope.x", &calls(&[])).expect_err("unknown");
        assert!(error.0.contains("$nope"), "{error}");
        assert!(Expr::compile("{a: }", &calls(&[])).is_err());
    }
}
