//! Runs one of the repo's Node harnesses (`tests/graphql-http`,
//! `tests/apollo-client`) against a live BFF and returns what it printed.

use std::path::PathBuf;
use std::process::Command;

/// Runs `node <script> <args>` in `tests/<project>`, whose packages
/// `scripts/setup` installed (`package` is one of them, to say so when
/// missing); panics unless it exits 0, and returns its stdout.
pub async fn run(project: &str, package: &str, script: &str, args: Vec<String>) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(project);
    assert!(
        dir.join("node_modules").join(package).exists(),
        "run `npm ci --prefix tests/{project}` first (bash scripts/setup does)"
    );
    let script = script.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .args(args)
            .current_dir(dir)
            .output()
    })
    .await
    .expect("node task")
    .expect("node runs");
    assert!(
        output.status.success(),
        "node in tests/{project} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
