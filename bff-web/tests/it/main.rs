//! bff-web's own tests, one test binary: its screens against the demo
//! upstreams (`screens`), and the built binary (`binary`).

mod binary;
mod screens;
