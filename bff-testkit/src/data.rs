//! Seeded, deterministic data for the demo services.
//!
//! Some users have deliberately interesting shapes for tests and demos:
//! `u1` has 12 orders and 15 notifications (4 unread), `u3` has none,
//! `u4` has 100 orders from 100 different sellers, `u5` exactly one, `u6`
//! twenty.

use std::time::{Duration, UNIX_EPOCH};

use bff_shop::clients::notifications::Notification;
use bff_shop::clients::orders::{Order, OrderItem};
use bff_shop::clients::users::User;

/// Number of seeded users, `u1` to `u150`: enough that one request can
/// need more users than one batch call may ask for.
pub const USER_COUNT: usize = 150;

const FIRST: [&str; 12] = [
    "Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Donald", "Margaret", "Ken", "Radia",
    "Tim", "Hedy",
];
const LAST: [&str; 12] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Liskov",
    "Dijkstra",
    "Allen",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
];
const TIERS: [&str; 3] = ["free", "plus", "pro"];
const STATUSES: [&str; 5] = ["pending", "paid", "shipped", "delivered", "cancelled"];
/// The seeded catalog: SKU, name, unit price in cents. Seeded orders and
/// placed ones both take their lines from it.
const PRODUCTS: [(&str, &str, i64); 6] = [
    ("sku-kbd", "Mechanical keyboard", 8900),
    ("sku-mouse", "Wireless mouse", 2900),
    ("sku-cable", "USB-C cable", 900),
    ("sku-lamp", "Desk lamp", 3400),
    ("sku-mug", "Coffee mug", 1200),
    ("sku-book", "The Art of Computer Programming", 19900),
];
/// A catalog product's name and unit price, by SKU.
pub fn product(sku: &str) -> Option<(&'static str, i64)> {
    PRODUCTS
        .iter()
        .find(|(known, _, _)| *known == sku)
        .map(|(_, name, price)| (*name, *price))
}

const KINDS: [&str; 3] = ["order_update", "message", "promo"];

/// 2026-11-01T12:00:00Z: seeded records are dated back from here.
const SEED_EPOCH_SECS: u64 = 1_793_534_400;

/// An RFC 3339 UTC timestamp `hours_ago` hours before the seed epoch.
pub fn seeded_time(hours_ago: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(SEED_EPOCH_SECS - hours_ago * 3600);
    humantime::format_rfc3339_seconds(at).to_string()
}

fn user_id(n: usize) -> String {
    format!("u{n}")
}

/// The seeded name of user `id`, for tests that check a name reached a
/// reply; panics for an id the seed does not have.
pub fn user_name(id: &str) -> String {
    users()
        .into_iter()
        .find(|u| u.id == id)
        .map(|u| u.name)
        .unwrap_or_else(|| panic!("no demo user {id}"))
}

pub fn users() -> Vec<User> {
    (1..=USER_COUNT)
        .map(|n| {
            let first = FIRST[(n - 1) % FIRST.len()];
            let last = LAST[(n - 1 + n / FIRST.len()) % LAST.len()];
            User {
                id: user_id(n),
                name: format!("{first} {last}"),
                email: format!(
                    "{}.{}{n}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase()
                ),
                avatar_url: format!("https://avatars.example.com/u{n}.png"),
                tier: TIERS[n % TIERS.len()].to_owned(),
                created_at: seeded_time(24 * 365 + n as u64),
            }
        })
        .collect()
}

fn order_count(n: usize) -> usize {
    match n {
        1 => 12,
        3 => 0,
        4 => 100,
        5 => 1,
        6 => 20,
        _ => n % 7,
    }
}

fn notification_count(n: usize) -> (usize, usize) {
    match n {
        1 => (15, 4),
        3 => (0, 0),
        _ => ((n % 6) * 2, n % 3),
    }
}

/// Every user's orders, each user's newest first.
pub fn orders() -> Vec<Order> {
    let mut orders = Vec::new();
    let mut next_id = 1000;
    for n in 1..=USER_COUNT {
        for i in 0..order_count(n) {
            next_id += 1;
            // Sellers are other users, spread so 100 orders name many sellers.
            let seller = (n + i) % USER_COUNT + 1;
            let seller = if seller == n {
                seller % USER_COUNT + 1
            } else {
                seller
            };
            let items: Vec<OrderItem> = (0..=(i % 3))
                .map(|k| {
                    let (sku, name, price) = PRODUCTS[(n + i + k) % PRODUCTS.len()];
                    OrderItem {
                        sku: sku.to_owned(),
                        name: name.to_owned(),
                        quantity: ((i + k) % 3 + 1) as i64,
                        unit_price_cents: price,
                    }
                })
                .collect();
            orders.push(Order {
                id: format!("o{next_id}"),
                user_id: user_id(n),
                seller_id: user_id(seller),
                status: STATUSES[(n + i) % STATUSES.len()].to_owned(),
                total_cents: items
                    .iter()
                    .map(|it| it.quantity * it.unit_price_cents)
                    .sum(),
                currency: "USD".to_owned(),
                created_at: seeded_time(i as u64 * 5 + 1),
                items,
            });
        }
    }
    orders
}

/// Every user's notifications, newest first; the first `unread` are unread.
pub fn notifications() -> Vec<Notification> {
    let mut all = Vec::new();
    let mut next_id = 500;
    for n in 1..=USER_COUNT {
        let (count, unread) = notification_count(n);
        for i in 0..count {
            next_id += 1;
            let kind = KINDS[i % KINDS.len()];
            let actor = match kind {
                "promo" => None,
                _ => Some(user_id((n + i * 7) % USER_COUNT + 1)),
            };
            all.push(Notification {
                id: format!("n{next_id}"),
                user_id: user_id(n),
                kind: kind.to_owned(),
                title: match kind {
                    "order_update" => "Your order has shipped".to_owned(),
                    "message" => "You have a new message".to_owned(),
                    _ => "20% off desk lamps this week".to_owned(),
                },
                body: format!("Notification {i} for {}", user_id(n)),
                actor_id: actor,
                read: i >= unread,
                created_at: seeded_time(i as u64 * 3 + 2),
            });
        }
    }
    all
}
