//! The `bff-web` binary: everything is in the library and in bff-core.

fn main() -> std::process::ExitCode {
    bff_core::run::main(bff_web::SPEC)
}
