//! bff-mobile's own tests, one test binary: its screens against the demo
//! upstreams, as the mobile team runs them with `cargo test -p bff-mobile`.

mod dashboard;
