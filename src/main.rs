//! The binary: parse the command line, run it, map the outcome to an exit code. No logic here.

fn main() {
    let code = mcp_warden::cli::main();
    std::process::exit(code);
}
