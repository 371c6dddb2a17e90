//! The cross-BFF tests' harness: the test kit's, with both BFFs by name,
//! and test signing keys.

pub mod keys;
pub mod node;

pub use bff_testkit::harness::*;

/// The two BFFs under test.
#[derive(Debug, Clone, Copy)]
pub enum Bff {
    Web,
    Mobile,
}

impl From<Bff> for bff_core::run::BffSpec {
    fn from(bff: Bff) -> Self {
        match bff {
            Bff::Web => bff_web::SPEC,
            Bff::Mobile => bff_mobile::SPEC,
        }
    }
}
