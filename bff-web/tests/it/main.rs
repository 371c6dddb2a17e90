//! bff-web's own tests, one test binary: its screens against the demo
//! upstreams (`dashboard`, `screens`), the built binary (`binary`), and
//! three of them behind haproxy on one Redis (`replicas`).

mod binary;
mod dashboard;
mod order_history;
mod replicas;
mod screens;
