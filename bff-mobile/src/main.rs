//! The `bff-mobile` binary: everything is in the library and in bff-core.

/// mimalloc instead of the system allocator: a request makes many small,
/// short-lived allocations, which it serves with less CPU and less
/// fragmentation under many concurrent requests (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    bff_core::run::main(bff_mobile::SPEC)
}
