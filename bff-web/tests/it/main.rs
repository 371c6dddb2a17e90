//! bff-web's own tests, one test binary: its screens against the demo
//! upstreams (`dashboard`, `screens`), and the built binary (`binary`).

mod binary;
mod dashboard;
mod order_history;
mod screens;
