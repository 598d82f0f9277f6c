//! The binary: parse the command line, run it, map the outcome to an exit code. No logic here.

/// Only with `--features mimalloc`, for the allocator comparison (README "Performance").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = mcp_warden::cli::main();
    std::process::exit(code);
}
