//! The documents a frontend developer reads link to what is in the repo:
//! every relative link in the README, ARCHITECTURE.md, BENCHMARKS.md and
//! the contract names a file of this clone, and every `#anchor` a heading
//! of its document (GitHub's slugs).

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The targets of `[text](target)` links in `markdown`.
fn links(markdown: &str) -> Vec<&str> {
    markdown
        .match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &markdown[at + 2..];
            rest.find(')').map(|end| &rest[..end])
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut checked = 0;
    for document in [
        "README.md",
        "ARCHITECTURE.md",
        "BENCHMARKS.md",
        "contracts/bff-api.md",
    ] {
        let path = Path::new(ROOT).join(document);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{document}: {e}"));
        let dir = path.parent().expect("a directory");
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let linked = if file.is_empty() {
                path.clone()
            } else {
                dir.join(file)
            };
            assert!(
                linked.exists(),
                "{document} links to {target}: no such file"
            );
            if !anchor.is_empty() {
                let linked_text = std::fs::read_to_string(&linked).expect("a text file");
                assert!(
                    anchors(&linked_text).iter().any(|a| a == anchor),
                    "{document} links to {target}: no such heading"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} links checked");
}

#[test]
fn the_contract_documents_the_order_body_and_every_route() {
    let contract = std::fs::read_to_string(Path::new(ROOT).join("contracts/bff-api.md"))
        .expect("the contract is in the repo");
    for route in [
        "GET /user-dashboard",
        "GET /order-history",
        "POST /orders",
        "POST /graphql",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /openapi.json",
    ] {
        assert!(
            contract.contains(route),
            "the contract does not document {route}"
        );
    }
    assert!(
        contract.contains("\"items\""),
        "POST /orders' body is documented"
    );
}
