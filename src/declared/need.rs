//! What an endpoint reads of each call's reply: worked out at load from
//! its expressions, so a reply is built only as far as it is read.
//!
//! A dashboard's replies carry more than its shape takes (an order's
//! line items, where the shape only adds up their quantities); building
//! every part as jq values, hashing every key and dropping it all again
//! was the largest cost of a declared request. The analysis follows paths
//! (`.orders[:10][] | {id, status}`) from the variables through the
//! direct evaluator's expressions; whatever it cannot follow (a value
//! compared, counted, added, or an expression only jaq runs) is read
//! whole. It only ever over-approximates: a part left out is one no
//! expression can reach, so every expression gives what it gave on the
//! whole reply.

use std::collections::BTreeMap;

use jaq_json::Val;

use super::fast::{Fast, Step};

/// What is read of a value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Need {
    /// All of it.
    pub whole: bool,
    /// Of an object: these fields, each as far as its own need says.
    pub fields: BTreeMap<String, Need>,
    /// Of an array (or an object's values): every element, this far.
    pub items: Option<Box<Need>>,
}

impl Need {
    /// Everything.
    pub fn whole() -> Self {
        Self {
            whole: true,
            ..Self::default()
        }
    }

    /// The need at `path` below this one, made if missing.
    fn at(&mut self, path: &[Seg]) -> &mut Need {
        let mut need = self;
        for seg in path {
            need = match seg {
                Seg::Field(name) => need.fields.entry(name.clone()).or_default(),
                Seg::Items => need.items.get_or_insert_with(Box::default),
            };
        }
        need
    }

    /// Whether all of the value is read.
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// What this or `other` reads.
    pub fn merge(&mut self, other: Need) {
        self.whole |= other.whole;
        for (name, need) in other.fields {
            self.fields.entry(name).or_default().merge(need);
        }
        if let Some(items) = other.items {
            self.items.get_or_insert_with(Box::default).merge(*items);
        }
    }
}

/// One step from a variable into its value.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Field(String),
    Items,
}

/// A value an expression passes along: a place in a variable's value, or
/// one it computed (`None`), whose parts are no variable's.
pub type Place = Option<(usize, Vec<Seg>)>;

/// Records, per variable (by index), what `fast` reads when run on
/// `input`. Every output counts as read whole (it is written out or
/// used as a value).
pub fn collect(fast: &Fast, input: Place, needs: &mut BTreeMap<usize, Need>) {
    let outputs = walk(fast, &input, needs);
    for output in outputs {
        read_whole(&output, needs);
    }
}

/// The place of a call's reply passed as the input (`visible_if`).
pub fn input_of(var: usize) -> Place {
    Some((var, Vec::new()))
}

fn touch(place: &Place, needs: &mut BTreeMap<usize, Need>) {
    if let Some((var, path)) = place {
        needs.entry(*var).or_default().at(path);
    }
}

fn read_whole(place: &Place, needs: &mut BTreeMap<usize, Need>) {
    if let Some((var, path)) = place {
        needs.entry(*var).or_default().at(path).whole = true;
    }
}

fn extend(place: &Place, seg: Seg) -> Place {
    place.as_ref().map(|(var, path)| {
        let mut path = path.clone();
        path.push(seg);
        (*var, path)
    })
}

/// The places `fast` outputs when run on `input`, recording what it reads
/// on the way.
fn walk(fast: &Fast, input: &Place, needs: &mut BTreeMap<usize, Need>) -> Vec<Place> {
    match fast {
        Fast::Id => vec![input.clone()],
        Fast::Var(var) => vec![Some((*var, Vec::new()))],
        Fast::Lit(_) => vec![None],
        Fast::Path(term, steps) => {
            let mut places = walk(term, input, needs);
            for (step, _optional) in steps {
                places = places
                    .into_iter()
                    .map(|place| match step {
                        Step::Index(Fast::Lit(Val::TStr(key))) => match std::str::from_utf8(key) {
                            Ok(key) => extend(&place, Seg::Field(key.to_owned())),
                            Err(_) => {
                                read_whole(&place, needs);
                                None
                            }
                        },
                        Step::Index(Fast::Lit(Val::Num(_))) => extend(&place, Seg::Items),
                        Step::Index(index) => {
                            // A computed index: evaluated on the path's
                            // own input, and any part may be taken.
                            for output in walk(index, input, needs) {
                                read_whole(&output, needs);
                            }
                            read_whole(&place, needs);
                            None
                        }
                        // A slice keeps the elements: what is read of it
                        // is read of the array.
                        Step::Slice(..) => place,
                        Step::Iterate => extend(&place, Seg::Items),
                    })
                    .collect();
            }
            for place in &places {
                touch(place, needs);
            }
            places
        }
        Fast::Pipe(left, right) => walk(left, input, needs)
            .iter()
            .flat_map(|place| walk(right, place, needs))
            .collect(),
        Fast::Comma(left, right) | Fast::Alt(left, right) => {
            let mut places = walk(left, input, needs);
            places.extend(walk(right, input, needs));
            places
        }
        Fast::Eq(left, right, _) => {
            for place in walk(left, input, needs)
                .into_iter()
                .chain(walk(right, input, needs))
            {
                read_whole(&place, needs);
            }
            vec![None]
        }
        Fast::Arr(inner) => {
            if let Some(inner) = inner {
                for place in walk(inner, input, needs) {
                    read_whole(&place, needs);
                }
            }
            vec![None]
        }
        Fast::Obj(fields) => {
            for (_, value) in fields {
                for place in walk(value, input, needs) {
                    read_whole(&place, needs);
                }
            }
            vec![None]
        }
        Fast::If(branches, otherwise) => {
            let mut places = Vec::new();
            for (condition, then) in branches {
                // A condition is only tested for truth: a value left
                // with fewer parts tests the same.
                for place in walk(condition, input, needs) {
                    touch(&place, needs);
                }
                places.extend(walk(then, input, needs));
            }
            match otherwise {
                Some(otherwise) => places.extend(walk(otherwise, input, needs)),
                None => places.push(input.clone()),
            }
            places
        }
        Fast::Length | Fast::Add => {
            read_whole(input, needs);
            vec![None]
        }
        Fast::Map(f) => {
            let items = extend(input, Seg::Items);
            touch(&items, needs);
            for place in walk(f, &items, needs) {
                read_whole(&place, needs);
            }
            vec![None]
        }
        Fast::Select(condition) => {
            for place in walk(condition, input, needs) {
                touch(&place, needs);
            }
            vec![input.clone()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(code: &str) -> BTreeMap<usize, Need> {
        let vars = ["orders".to_owned(), "users".to_owned()];
        let fast = Fast::compile(code, &vars).expect("direct");
        let mut needs = BTreeMap::new();
        collect(&fast, None, &mut needs);
        needs
    }

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn paths_into_a_reply_are_followed_and_outputs_read_whole() {
        let needs = needs(
            "$orders | if . then [.orders[:10][] | {id, itemCount: ([.items[].quantity] | add // 0)}] else null end",
        );
        let orders = &needs[&0];
        assert!(!orders.whole);
        let order = orders.fields["orders"].items.as_deref().expect("items");
        assert_eq!(
            order.fields.keys().cloned().collect::<Vec<_>>(),
            fields(&["id", "items"])
        );
        assert!(order.fields["id"].whole);
        let item = order.fields["items"].items.as_deref().expect("items");
        assert_eq!(
            item.fields.keys().cloned().collect::<Vec<_>>(),
            fields(&["quantity"])
        );
        assert!(item.fields["quantity"].whole);
        assert!(!needs.contains_key(&1), "$users is not read");
    }

    #[test]
    fn a_value_used_as_a_whole_is_read_whole() {
        assert!(needs("$users").get(&1).is_some_and(Need::is_whole));
        assert!(needs("$orders.orders | length")[&0].fields["orders"].whole);
        assert!(needs("{a: $users.profile}")[&1].fields["profile"].whole);
        assert!(needs("$users.x == $orders.y")[&1].fields["x"].whole);
        // A computed index may take any field.
        assert!(needs("$users[$orders.k]")[&1].whole);
    }
}
