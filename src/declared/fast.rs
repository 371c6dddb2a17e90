//! A direct evaluator for the part of jq that reply shapes and templates
//! are written in: paths, `[]`, slices, object and array construction,
//! `|`, `,`, `//`, `if`, `==`, `length`, `add`, `map`, `select`.
//!
//! jaq stays the language and the reference: an expression outside this
//! part is run by jaq alone, and so is any run where this evaluator meets
//! a case it does not take (an error, a value it does not add, ...), so
//! the result is always jaq's. What it buys is speed on the request path:
//! jaq's interpreter spends about half a microsecond per step through
//! boxed iterators, which made a declared dashboard cost 1.7 times the
//! Rust one (BENCHMARKS.md); here a step is a match and a clone.

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Term};
use jaq_core::ops::Cmp;
use jaq_core::path::{Opt, Part};
use jaq_json::{Map, Num, Val};

use super::expr::text;

/// An expression this evaluator runs.
#[derive(Debug, Clone)]
pub enum Fast {
    Id,
    /// A variable, by its index among the expression's variables.
    Var(usize),
    Lit(Val),
    /// Path parts applied, in order, to the term's outputs.
    Path(Box<Fast>, Vec<(Step, bool)>),
    Pipe(Box<Fast>, Box<Fast>),
    Comma(Box<Fast>, Box<Fast>),
    Alt(Box<Fast>, Box<Fast>),
    Eq(Box<Fast>, Box<Fast>, bool),
    Arr(Option<Box<Fast>>),
    Obj(Vec<(Val, Fast)>),
    If(Vec<(Fast, Fast)>, Option<Box<Fast>>),
    Length,
    Add,
    Map(Box<Fast>),
    Select(Box<Fast>),
}

/// One part of a path: `.key` / `[expr]`, `[]`, `[from:upto]`.
#[derive(Debug, Clone)]
pub enum Step {
    Index(Fast),
    Iterate,
    Slice(Option<isize>, Option<isize>),
}

/// Not taken here: jaq runs the expression instead.
#[derive(Debug, Clone, Copy)]
pub struct Unsupported;

type Run = Result<(), Unsupported>;

impl Fast {
    /// The evaluator for `code`, when every part of it is one this
    /// evaluator takes; `vars` are the expression's variables, without `$`.
    pub fn compile(code: &str, vars: &[String]) -> Option<Self> {
        let term = jaq_core::load::parse(code, |p| p.term())?;
        Self::from_term(&term, vars)
    }

    fn from_term(term: &Term<&str>, vars: &[String]) -> Option<Self> {
        let boxed = |t: &Term<&str>| Self::from_term(t, vars).map(Box::new);
        Some(match term {
            Term::Id => Self::Id,
            Term::Num(n) => Self::Lit(number(n)?),
            Term::Str(None, parts) => Self::Lit(text(&plain(parts)?)),
            Term::Var(name) => {
                let name = name.strip_prefix('$')?;
                Self::Var(vars.iter().position(|v| v == name)?)
            }
            Term::Arr(inner) => Self::Arr(match inner {
                Some(inner) => Some(boxed(inner)?),
                None => None,
            }),
            Term::Obj(entries) => {
                let mut fields = Vec::with_capacity(entries.len());
                for (key, value) in entries {
                    let (name, default) = match key {
                        Term::Str(None, parts) => {
                            let name = plain(parts)?;
                            let lookup = Self::Path(
                                Box::new(Self::Id),
                                vec![(Step::Index(Self::Lit(text(&name))), false)],
                            );
                            (name, lookup)
                        }
                        Term::Var(var) => {
                            let name = var.strip_prefix('$')?;
                            (
                                name.to_owned(),
                                Self::Var(vars.iter().position(|v| v == name)?),
                            )
                        }
                        _ => return None,
                    };
                    let value = match value {
                        Some(value) => Self::from_term(value, vars)?,
                        None => default,
                    };
                    fields.push((text(&name), value));
                }
                Self::Obj(fields)
            }
            Term::BinOp(l, op, r) => {
                let (l, r) = (boxed(l)?, boxed(r)?);
                match op {
                    BinaryOp::Pipe(None) => Self::Pipe(l, r),
                    BinaryOp::Comma => Self::Comma(l, r),
                    BinaryOp::Alt => Self::Alt(l, r),
                    BinaryOp::Cmp(Cmp::Eq) => Self::Eq(l, r, true),
                    BinaryOp::Cmp(Cmp::Ne) => Self::Eq(l, r, false),
                    _ => return None,
                }
            }
            Term::IfThenElse(branches, otherwise) => {
                let branches = branches
                    .iter()
                    .map(|(c, t)| Some((Self::from_term(c, vars)?, Self::from_term(t, vars)?)))
                    .collect::<Option<_>>()?;
                Self::If(
                    branches,
                    match otherwise {
                        Some(e) => Some(boxed(e)?),
                        None => None,
                    },
                )
            }
            Term::Call(name, args) => match (*name, &args[..]) {
                ("null", []) => Self::Lit(Val::Null),
                ("true", []) => Self::Lit(Val::Bool(true)),
                ("false", []) => Self::Lit(Val::Bool(false)),
                ("length", []) => Self::Length,
                ("add", []) => Self::Add,
                ("map", [f]) => Self::Map(boxed(f)?),
                ("select", [f]) => Self::Select(boxed(f)?),
                _ => return None,
            },
            Term::Path(head, path) => {
                let mut steps = Vec::with_capacity(path.0.len());
                for (part, opt) in &path.0 {
                    let step = match part {
                        Part::Index(index) => Step::Index(Self::from_term(index, vars)?),
                        Part::Range(None, None) => Step::Iterate,
                        Part::Range(from, upto) => Step::Slice(bound(from)?, bound(upto)?),
                    };
                    steps.push((step, matches!(opt, Opt::Optional)));
                }
                Self::Path(boxed(head)?, steps)
            }
            _ => return None,
        })
    }

    /// Every output for `input`, in order, given the variables' values.
    pub fn run(&self, input: &Val, vars: &[Val]) -> Result<Vec<Val>, Unsupported> {
        let mut out = Vec::new();
        self.each(input, vars, &mut |v| {
            out.push(v.clone());
            Ok(())
        })?;
        Ok(out)
    }

    /// Writes every output for `input` as JSON into `out`, separated by
    /// commas, without building the values: fields are written from the
    /// replies they are read from. On `Unsupported`, `out` may hold part
    /// of a value: the caller drops it.
    pub fn render(
        &self,
        input: &Val,
        vars: &[Val],
        out: &mut Vec<u8>,
    ) -> Result<usize, Unsupported> {
        let mut count = 0;
        self.render_each(input, vars, out, &mut count)?;
        Ok(count)
    }

    /// [`Self::render`], counting the outputs written in `count`.
    fn render_each(&self, input: &Val, vars: &[Val], out: &mut Vec<u8>, count: &mut usize) -> Run {
        let separate = |out: &mut Vec<u8>, count: &mut usize| {
            if *count > 0 {
                out.push(b',');
            }
            *count += 1;
        };
        match self {
            Self::Obj(fields) => {
                separate(out, count);
                out.push(b'{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json(key, out);
                    out.push(b':');
                    // A field has exactly one value here; a stream is jaq's.
                    let mut values = 0;
                    value.render_each(input, vars, out, &mut values)?;
                    if values != 1 {
                        return Err(Unsupported);
                    }
                }
                out.push(b'}');
                Ok(())
            }
            Self::Arr(inner) => {
                separate(out, count);
                out.push(b'[');
                if let Some(inner) = inner {
                    inner.render_each(input, vars, out, &mut 0)?;
                }
                out.push(b']');
                Ok(())
            }
            Self::Pipe(l, r) => l.each(input, vars, &mut |v| r.render_each(v, vars, out, count)),
            Self::Comma(l, r) => {
                l.render_each(input, vars, out, count)?;
                r.render_each(input, vars, out, count)
            }
            Self::If(branches, otherwise) => {
                render_branch(branches, otherwise.as_deref(), input, vars, out, count)
            }
            _ => self.each(input, vars, &mut |v| {
                separate(out, count);
                write_json(v, out);
                Ok(())
            }),
        }
    }

    fn each(&self, input: &Val, vars: &[Val], out: &mut dyn FnMut(&Val) -> Run) -> Run {
        match self {
            Self::Id => out(input),
            Self::Var(i) => out(vars.get(*i).unwrap_or(&Val::Null)),
            Self::Lit(v) => out(v),
            Self::Path(head, steps) => {
                head.each(input, vars, &mut |v| apply(v, steps, input, vars, out))
            }
            Self::Pipe(l, r) => l.each(input, vars, &mut |v| r.each(v, vars, out)),
            Self::Comma(l, r) => {
                l.each(input, vars, out)?;
                r.each(input, vars, out)
            }
            Self::Alt(l, r) => {
                let mut any = false;
                l.each(input, vars, &mut |v| {
                    if truthy(v) {
                        any = true;
                        out(v)?;
                    }
                    Ok(())
                })?;
                if any {
                    Ok(())
                } else {
                    r.each(input, vars, out)
                }
            }
            Self::Eq(l, r, equal) => {
                // One value each side; streams are jaq's to combine.
                let (mut left, mut right) = (l.run(input, vars)?, r.run(input, vars)?);
                match (left.pop(), right.pop()) {
                    (Some(a), Some(b)) if left.is_empty() && right.is_empty() => {
                        out(&Val::Bool((a == b) == *equal))
                    }
                    _ => Err(Unsupported),
                }
            }
            Self::Arr(None) => out(&Val::Arr(Vec::new().into())),
            Self::Arr(Some(inner)) => out(&Val::Arr(inner.run(input, vars)?.into())),
            Self::Obj(fields) => {
                let mut values = Vec::with_capacity(fields.len());
                for (_, value) in fields {
                    values.push(value.run(input, vars)?);
                }
                if values.iter().all(|v| v.len() == 1) {
                    let map: Map = fields
                        .iter()
                        .zip(values)
                        .map(|((key, _), mut v)| (key.clone(), v.pop().unwrap_or_default()))
                        .collect();
                    return out(&Val::obj(map));
                }
                // Several outputs somewhere: one object per combination.
                product(fields, &values, 0, &mut Map::default(), out)
            }
            Self::If(branches, otherwise) => {
                branch(branches, otherwise.as_deref(), input, vars, out)
            }
            Self::Length => out(&length(input)?),
            Self::Add => out(&add(input)?),
            Self::Map(f) => {
                let mut items = Vec::new();
                iterate(input, false, &mut |v| {
                    f.each(v, vars, &mut |x| {
                        items.push(x.clone());
                        Ok(())
                    })
                })?;
                out(&Val::Arr(items.into()))
            }
            Self::Select(f) => {
                let mut keep = Vec::new();
                f.each(input, vars, &mut |c| {
                    keep.push(truthy(c));
                    Ok(())
                })?;
                for k in keep {
                    if k {
                        out(input)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// [`branch`], writing JSON.
fn render_branch(
    branches: &[(Fast, Fast)],
    otherwise: Option<&Fast>,
    input: &Val,
    vars: &[Val],
    out: &mut Vec<u8>,
    count: &mut usize,
) -> Run {
    let Some(((condition, then), rest)) = branches.split_first() else {
        return match otherwise {
            Some(e) => e.render_each(input, vars, out, count),
            None => Fast::Id.render_each(input, vars, out, count),
        };
    };
    condition.each(input, vars, &mut |c| {
        if truthy(c) {
            then.render_each(input, vars, out, count)
        } else {
            render_branch(rest, otherwise, input, vars, out, count)
        }
    })
}

/// The `if` branches from the first, for each output of its condition.
fn branch(
    branches: &[(Fast, Fast)],
    otherwise: Option<&Fast>,
    input: &Val,
    vars: &[Val],
    out: &mut dyn FnMut(&Val) -> Run,
) -> Run {
    let Some(((condition, then), rest)) = branches.split_first() else {
        return match otherwise {
            Some(e) => e.each(input, vars, out),
            None => out(input),
        };
    };
    condition.each(input, vars, &mut |c| {
        if truthy(c) {
            then.each(input, vars, out)
        } else {
            branch(rest, otherwise, input, vars, out)
        }
    })
}

fn product(
    fields: &[(Val, Fast)],
    values: &[Vec<Val>],
    at: usize,
    built: &mut Map,
    out: &mut dyn FnMut(&Val) -> Run,
) -> Run {
    let Some(((key, _), choices)) = fields.get(at).zip(values.get(at)) else {
        return out(&Val::obj(built.clone()));
    };
    for choice in choices {
        built.insert(key.clone(), choice.clone());
        product(fields, values, at + 1, built, out)?;
    }
    built.shift_remove(key);
    Ok(())
}

/// Applies path `steps` to `value`; an index expression reads `input`.
fn apply(
    value: &Val,
    steps: &[(Step, bool)],
    input: &Val,
    vars: &[Val],
    out: &mut dyn FnMut(&Val) -> Run,
) -> Run {
    let Some(((step, optional), rest)) = steps.split_first() else {
        return out(value);
    };
    match step {
        Step::Iterate => iterate(value, *optional, &mut |v| apply(v, rest, input, vars, out)),
        Step::Slice(from, upto) => match value {
            Val::Arr(items) => {
                let len = items.len() as isize;
                let clamp = |i: isize| (if i < 0 { len + i } else { i }).clamp(0, len) as usize;
                let from = clamp(from.unwrap_or(0));
                let upto = clamp(upto.unwrap_or(len)).max(from);
                let slice = Val::Arr(items[from..upto].to_vec().into());
                apply(&slice, rest, input, vars, out)
            }
            _ => Err(Unsupported),
        },
        Step::Index(index) => index.each(input, vars, &mut |key| {
            let found = match (value, key) {
                (Val::Null, _) => None,
                (Val::Obj(fields), Val::TStr(_)) => fields.get(key),
                (Val::Arr(items), Val::Num(Num::Int(i))) => {
                    let i = if *i < 0 { items.len() as isize + i } else { *i };
                    usize::try_from(i).ok().and_then(|i| items.get(i))
                }
                _ if *optional => return Ok(()),
                _ => return Err(Unsupported),
            };
            apply(found.unwrap_or(&Val::Null), rest, input, vars, out)
        }),
    }
}

/// `.[]`: an array's items, an object's values.
fn iterate(value: &Val, optional: bool, out: &mut dyn FnMut(&Val) -> Run) -> Run {
    match value {
        Val::Arr(items) => items.iter().try_for_each(&mut *out),
        Val::Obj(fields) => fields.values().try_for_each(out),
        _ if optional => Ok(()),
        _ => Err(Unsupported),
    }
}

fn truthy(value: &Val) -> bool {
    !matches!(value, Val::Null | Val::Bool(false))
}

fn length(value: &Val) -> Result<Val, Unsupported> {
    let count = match value {
        Val::Null => 0,
        Val::Arr(items) => items.len(),
        Val::Obj(fields) => fields.len(),
        Val::TStr(bytes) => std::str::from_utf8(bytes)
            .map_err(|_| Unsupported)?
            .chars()
            .count(),
        _ => return Err(Unsupported),
    };
    Ok(Val::Num(Num::Int(
        isize::try_from(count).map_err(|_| Unsupported)?,
    )))
}

/// `add` over integers (and `null`s); anything else is jaq's to add.
fn add(value: &Val) -> Result<Val, Unsupported> {
    let items: Vec<&Val> = match value {
        Val::Null => return Ok(Val::Null),
        Val::Arr(items) => items.iter().collect(),
        Val::Obj(fields) => fields.values().collect(),
        _ => return Err(Unsupported),
    };
    let mut sum: Option<isize> = None;
    for item in items {
        match item {
            Val::Null => {}
            Val::Num(Num::Int(i)) => {
                sum = Some(sum.unwrap_or(0).checked_add(*i).ok_or(Unsupported)?);
            }
            _ => return Err(Unsupported),
        }
    }
    Ok(sum.map_or(Val::Null, |s| Val::Num(Num::Int(s))))
}

fn number(text: &str) -> Option<Val> {
    text.parse::<isize>()
        .map(|i| Val::Num(Num::Int(i)))
        .ok()
        .or_else(|| text.parse::<f64>().ok().map(|f| Val::Num(Num::Float(f))))
}

fn bound(term: &Option<Term<&str>>) -> Option<Option<isize>> {
    match term {
        None => Some(None),
        Some(Term::Num(n)) => n.parse().ok().map(Some),
        Some(Term::Neg(inner)) => match &**inner {
            Term::Num(n) => n.parse::<isize>().ok().map(|n| Some(-n)),
            _ => None,
        },
        Some(_) => None,
    }
}

/// A string without interpolation or escapes other than characters.
fn plain(parts: &[StrPart<&str, Term<&str>>]) -> Option<String> {
    let mut text = String::new();
    for part in parts {
        match part {
            StrPart::Str(s) => text.push_str(s),
            StrPart::Char(c) => text.push(*c),
            StrPart::Term(_) => return None,
        }
    }
    Some(text)
}

/// `value` as JSON, straight into `out`: strings escaped as serde_json
/// escapes them (invalid UTF-8 replaced), numbers as jaq prints them.
pub(super) fn write_json(value: &Val, out: &mut Vec<u8>) {
    use std::io::Write as _;
    match value {
        Val::Null => out.extend_from_slice(b"null"),
        Val::Bool(true) => out.extend_from_slice(b"true"),
        Val::Bool(false) => out.extend_from_slice(b"false"),
        Val::Num(n) => {
            let _ = write!(out, "{n}");
        }
        Val::TStr(bytes) | Val::BStr(bytes) => write_str(bytes, out),
        Val::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(item, out);
            }
            out.push(b']');
        }
        Val::Obj(fields) => {
            out.push(b'{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match key {
                    Val::TStr(bytes) | Val::BStr(bytes) => write_str(bytes, out),
                    other => write_str(other.to_string().as_bytes(), out),
                }
                out.push(b':');
                write_json(item, out);
            }
            out.push(b'}');
        }
    }
}

pub(super) fn write_str(bytes: &[u8], out: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(bytes);
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &*text);
}
