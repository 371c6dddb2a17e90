//! Placing an order: validated here, claimed in the idempotency records,
//! sent once upstream with the client's key.

use bff_core::error::ApiError;
use bff_core::extract::validate_idempotency_key;
use bff_core::idempotency::{Claim, Fingerprint, IdempotencyRecords};
use bff_core::upstream::Caller;

use crate::ShopClients;
use crate::clients::orders::{NewOrderLine, Order, PlacedOrder};

/// Most lines one order may have.
pub const MAX_LINES: usize = 100;
/// Most units of one line.
pub const MAX_QUANTITY: i64 = 10_000;
/// Longest SKU accepted.
pub const MAX_SKU_LEN: usize = 64;

/// Checks the lines before anything is sent, so a bad order costs no
/// upstream call and gets a precise message.
pub fn validate_lines(lines: &[NewOrderLine]) -> Result<(), ApiError> {
    if lines.is_empty() {
        return Err(ApiError::BadRequest(
            "`items` must list at least one item".into(),
        ));
    }
    if lines.len() > MAX_LINES {
        return Err(ApiError::BadRequest(
            format!("`items` may list at most {MAX_LINES} items").into(),
        ));
    }
    for (i, line) in lines.iter().enumerate() {
        if line.sku.is_empty() || line.sku.len() > MAX_SKU_LEN {
            return Err(ApiError::BadRequest(
                format!("`items[{i}].sku` must be 1 to {MAX_SKU_LEN} characters").into(),
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(ApiError::BadRequest(
                format!("`items[{i}].quantity` must be between 1 and {MAX_QUANTITY}").into(),
            ));
        }
    }
    Ok(())
}

/// The key the order service receives: the SHA-256 (hex) of the caller's
/// subject and the client's key, so two callers who pick the same key get
/// two independent orders, and one caller's key can neither block nor
/// reveal another's; the same caller with the same key still gets the same
/// derived key, so replays work exactly as before.
pub fn scoped_idempotency_key(subject: &str, client_key: &str) -> String {
    use sha2::{Digest as _, Sha256};
    use std::fmt::Write as _;
    let mut hash = Sha256::new();
    hash.update(b"bff idempotency key\0");
    hash.update(subject.as_bytes());
    hash.update(b"\0");
    hash.update(client_key.as_bytes());
    hash.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Places the order for the caller. Sent exactly once; a client that did not
/// get an answer retries with the same key and gets the same order, from
/// the BFF's records (on any replica, with Redis) or, past their
/// retention, from the order service, which gets the same scoped key. The
/// same key while the first is in flight, or with other lines, is a
/// conflict, and nothing is sent.
pub async fn place_order(
    upstreams: &ShopClients,
    records: &IdempotencyRecords,
    caller: &Caller,
    idempotency_key: &str,
    lines: Vec<NewOrderLine>,
) -> Result<PlacedOrder, ApiError> {
    validate_idempotency_key(idempotency_key)?;
    validate_lines(&lines)?;
    let key = scoped_idempotency_key(caller.user_id(), idempotency_key);
    let pending = match records.claim(&key, fingerprint(&lines)).await {
        Claim::First(pending) => pending,
        Claim::Replay(reply) => {
            let order: Order = serde_json::from_slice(&reply)
                .map_err(|_| ApiError::Internal("a stored order could not be read back".into()))?;
            return Ok(PlacedOrder {
                order,
                created: false,
            });
        }
        Claim::InFlight => {
            return Err(ApiError::Conflict(
                "an order with this Idempotency-Key is being placed; retry once it has an answer"
                    .into(),
            ));
        }
        Claim::Mismatch => {
            return Err(ApiError::Conflict(
                "this Idempotency-Key was already used for a different order".into(),
            ));
        }
    };
    let placed = upstreams.orders.place(caller, &key, lines).await?;
    match serde_json::to_vec(&placed.order) {
        Ok(reply) => pending.complete(reply.into()).await,
        // Not recorded: a retry goes to the order service, which replays it.
        Err(error) => tracing::warn!(%error, "a placed order could not be recorded"),
    }
    Ok(placed)
}

/// The digest of an order's lines: the same key with other lines is a
/// conflict, the same lines however the JSON was spaced are not.
fn fingerprint(lines: &[NewOrderLine]) -> Fingerprint {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    for line in lines {
        hash.update(line.sku.as_bytes());
        hash.update(b"\0");
        hash.update(line.quantity.to_be_bytes());
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_keys_differ_per_caller_and_are_stable() {
        let a = scoped_idempotency_key("u1", "k");
        assert_eq!(a, scoped_idempotency_key("u1", "k"));
        assert_ne!(a, scoped_idempotency_key("u2", "k"));
        assert_ne!(a, scoped_idempotency_key("u1", "k2"));
        // No ambiguity where subject and key meet.
        assert_ne!(
            scoped_idempotency_key("u1", "2k"),
            scoped_idempotency_key("u12", "k")
        );
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
