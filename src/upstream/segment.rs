//! The identifier rule: a value that becomes an upstream path segment (a
//! token's `sub`, an object's id) is one segment and can
//! never be normalised into another path.
//!
//! Every segment is percent-encoded on its own when the URL is built
//! (`/` becomes `%2F`, so `a/b` stays one segment), but `.` and `..` are
//! dot-segments that URL parsers remove (`/users/..` is `/`), and a
//! service or proxy that decodes once more turns `%2e%2e` into them too.
//! So such values are refused before any upstream call: empty, `.`, `..`,
//! or anything that, percent-decoded as often as it still changes, is one
//! of those or holds a control character.

/// How many rounds of percent-decoding are looked through (`%252e` is
/// `%2e` after one round, `.` after two).
const DECODE_ROUNDS: usize = 4;

/// Why a value cannot be a path segment. The message is safe to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "an identifier must not be empty, `.` or `..`, nor hold control characters, even percent-encoded"
)]
pub struct UnsafeSegment;

/// Checks `value` against the identifier rule.
pub fn check(value: &str) -> Result<(), UnsafeSegment> {
    if is_unsafe(value.as_bytes()) {
        return Err(UnsafeSegment);
    }
    // Every upstream URL and every token's `sub` pass here: an id with
    // nothing percent-encoded (nearly all) costs no allocation.
    if !value.contains('%') {
        return Ok(());
    }
    let mut current = value.as_bytes().to_vec();
    for _ in 0..=DECODE_ROUNDS {
        if is_unsafe(&current) {
            return Err(UnsafeSegment);
        }
        let decoded: Vec<u8> = percent_decode(&current);
        if decoded == current {
            return Ok(());
        }
        current = decoded;
    }
    // Still changing after every round: nothing honest is encoded that deep.
    Err(UnsafeSegment)
}

fn is_unsafe(bytes: &[u8]) -> bool {
    matches!(bytes, b"" | b"." | b"..") || bytes.iter().any(u8::is_ascii_control)
}

/// One round of percent-decoding; a `%` not followed by two hex digits
/// stays as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            // Two hex digits: at most 0xff.
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(u8::MAX));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_pass() {
        for ok in [
            "u1",
            "o201",
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "user@example.com",
            "a.b",
            "...",
            "100%",
            "caf%C3%A9",
            // One segment once encoded (`..%2Fitems`): no dot-segment.
            "../items/i1001",
            "a/b",
            "%2F",
            "a\\b",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn dot_segments_and_their_encodings_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "%2e",
            "%2E%2e",
            ".%2e",
            "%252e%252e",
            "%00",
            "a\nb",
            "%0d%0a",
        ] {
            assert_eq!(check(bad), Err(UnsafeSegment), "{bad:?}");
        }
    }
}
