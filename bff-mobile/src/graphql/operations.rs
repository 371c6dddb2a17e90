//! The app's trusted operations: the only documents production accepts.
//! The app sends each by its SHA-256 (`extensions.persistedQuery.sha256Hash`
//! or `documentId`), computed over the file's exact text.

/// Every file in `bff-mobile/operations/`; a test keeps this list complete.
pub const TRUSTED_OPERATIONS: &[&str] = &[
    include_str!("../../operations/Dashboard.graphql"),
    include_str!("../../operations/Orders.graphql"),
    include_str!("../../operations/OrderDetail.graphql"),
    include_str!("../../operations/Notifications.graphql"),
    include_str!("../../operations/PlaceOrder.graphql"),
    include_str!("../../operations/MarkNotificationRead.graphql"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_file_is_trusted() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/operations");
        for entry in std::fs::read_dir(dir).expect("operations directory") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("readable");
            assert!(
                TRUSTED_OPERATIONS.contains(&text.as_str()),
                "{} is not listed in TRUSTED_OPERATIONS",
                path.display()
            );
        }
    }

    #[test]
    fn every_trusted_operation_is_valid_against_the_schema() {
        let schema = super::super::schema(&bff_core::config::Config::default());
        let registry = schema.sdl();
        for operation in TRUSTED_OPERATIONS {
            let document = async_graphql::parser::parse_query(operation).expect("operation parses");
            for (name, _) in document.operations.iter() {
                assert!(name.is_some(), "trusted operations are named: {operation}");
            }
        }
        assert!(
            !registry.contains("email"),
            "the mobile schema has no e-mail"
        );
    }
}
