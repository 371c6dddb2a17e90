//! Generated files committed to the repository (the GraphQL SDL, the
//! OpenAPI documents): whether what the code makes is what the file holds,
//! and, when not, where they part and which command makes the file again.

/// `Ok` when `actual` (what the code makes) is `committed` (the file's
/// text); otherwise an error naming `file`, the first line that differs
/// and `regenerate`, the command to run.
pub fn check(file: &str, actual: &str, committed: &str, regenerate: &str) -> Result<(), String> {
    if actual == committed {
        return Ok(());
    }
    let line = actual
        .lines()
        .zip(committed.lines())
        .position(|(a, c)| a != c)
        .unwrap_or_else(|| actual.lines().count().min(committed.lines().count()));
    Err(format!(
        "{file} differs from what the code makes (first at line {}: code has {:?}, file has {:?}); \
         regenerate it with `{regenerate}` and commit the result",
        line + 1,
        actual.lines().nth(line).unwrap_or(""),
        committed.lines().nth(line).unwrap_or(""),
    ))
}
