//! The README's configuration table against the defaults in the code:
//! every default it states is what a BFF really starts with, and every key
//! the config has is in the table.

use std::collections::BTreeSet;

use bff_core::config::{Config, ConfigSources};
use serde_json::Value;

const README: &str = include_str!("../../README.md");

/// The rows of the table under `## Configuration`: (keys cell, default cell).
fn rows() -> Vec<(String, String)> {
    let section = README
        .split("\n## Configuration")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section");
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            (
                cells[0].trim_start_matches("| ").to_owned(),
                cells.get(1).copied().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The backticked words of a cell.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The keys a row documents: `a.b.c`, `.d` is `a.b.d`.
fn keys_of(cell: &str) -> Vec<String> {
    let ticked = ticked(cell);
    let Some(first) = ticked.first() else {
        return Vec::new();
    };
    let parent = first.rsplit_once('.').map_or("", |(parent, _)| parent);
    ticked
        .iter()
        .map(|key| match key.strip_prefix('.') {
            Some(leaf) => format!("{parent}.{leaf}"),
            None => key.clone(),
        })
        .collect()
}

/// A default cell's values, per BFF (web, mobile), when the cell states
/// plain values only (`800ms`, `` `0.5`, `20`, `10s` ``, `` `20` / `10` ``,
/// optionally followed by a remark in parentheses); `None` for prose
/// ("unset", "required", ...).
fn defaults_of(cell: &str) -> Option<[Vec<String>; 2]> {
    let plain = |part: &str| -> Option<Vec<String>> {
        let part = part.split(" (").next().unwrap_or_default().trim();
        let values = ticked(part);
        let rebuilt: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        (!values.is_empty() && rebuilt.join(", ") == part).then_some(values)
    };
    match cell.split(" / ").collect::<Vec<_>>()[..] {
        [both] => plain(both).map(|values| [values.clone(), values]),
        [web, mobile] => Some([plain(web)?, plain(mobile)?]),
        _ => None,
    }
}

/// A value as TOML: numbers, booleans and `[]` as they are, anything else
/// as a string.
fn toml_literal(value: &str) -> String {
    if value.parse::<f64>().is_ok() || value == "true" || value == "false" || value == "[]" {
        value.to_owned()
    } else {
        format!("{value:?}")
    }
}

fn load(defaults: &str, overrides: &str) -> Config {
    Config::load_unvalidated(&ConfigSources {
        defaults_toml: defaults,
        overrides_toml: Some(overrides),
        ..ConfigSources::default()
    })
    .unwrap_or_else(|e| panic!("`{overrides}` does not load: {e}"))
}

/// What a documented key's value changes: the whole config, or for
/// `upstreams.all.*` the settings an upstream without its own table gets.
fn effect(config: &Config, key: &str) -> Value {
    if key.starts_with("upstreams.all.") {
        serde_json::to_value(config.upstreams.resolve("an-undocumented-upstream"))
    } else {
        serde_json::to_value(config)
    }
    .expect("the config serializes")
}

#[test]
fn every_default_the_readme_states_is_the_real_one() {
    let bffs = [
        ("bff-web", bff_web::DEFAULT_CONFIG),
        ("bff-mobile", bff_mobile::DEFAULT_CONFIG),
    ];
    let mut checked = 0;
    for (keys, defaults) in rows() {
        let keys = keys_of(&keys);
        if keys.iter().any(|key| key.contains('<')) {
            continue;
        }
        let Some(per_bff) = defaults_of(&defaults) else {
            continue;
        };
        for ((bff, toml), values) in bffs.iter().zip(per_bff) {
            assert_eq!(
                keys.len(),
                values.len(),
                "README row {keys:?}: {} keys, {} defaults",
                keys.len(),
                values.len()
            );
            let base = load(toml, "");
            for (key, value) in keys.iter().zip(&values) {
                let set = load(toml, &format!("{key} = {}", toml_literal(value)));
                assert_eq!(
                    effect(&set, key),
                    effect(&base, key),
                    "README says {key} defaults to `{value}` in {bff}; it does not"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} defaults checked: is the table there?"
    );
}

/// Every leaf key of `value`, dotted; a duration `{secs, nanos}` is a leaf.
fn leaves(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) if !(map.len() == 2 && map.contains_key("secs")) => {
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(&path, value, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

#[test]
fn every_config_key_is_in_the_readme_table() {
    let documented: BTreeSet<String> = rows().iter().flat_map(|(keys, _)| keys_of(keys)).collect();
    let mut keys = BTreeSet::new();
    let config = serde_json::to_value(Config::default()).expect("serializes");
    leaves("", &config, &mut keys);
    let upstream =
        serde_json::to_value(bff_core::config::UpstreamSettings::default()).expect("serializes");
    leaves("upstreams.all", &upstream, &mut keys);
    keys.remove("upstreams");
    let missing: Vec<&String> = keys.difference(&documented).collect();
    assert!(missing.is_empty(), "not in the README table: {missing:?}");
}

#[test]
fn a_bff_sets_only_what_differs_from_the_built_in_defaults() {
    use figment::providers::{Format as _, Toml};
    for (bff, toml) in [
        ("bff-web", bff_web::DEFAULT_CONFIG),
        ("bff-mobile", bff_mobile::DEFAULT_CONFIG),
    ] {
        let table: Value = figment::Figment::from(Toml::string(toml))
            .extract()
            .expect("the BFF's TOML parses");
        let mut keys = BTreeSet::new();
        leaves("", &table, &mut keys);
        let built_in = load("", "");
        for key in keys {
            let value = key
                .split('.')
                .try_fold(&table, |value, part| value.get(part))
                .expect("a leaf of the table");
            let literal = match value {
                Value::String(text) => format!("{text:?}"),
                other => other.to_string(),
            };
            let set = load("", &format!("{key} = {literal}"));
            assert_ne!(
                effect(&set, &key),
                effect(&built_in, &key),
                "{bff} sets {key} to its built-in default: defaults live in one place"
            );
        }
    }
}
