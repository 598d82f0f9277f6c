//! The floor for the stdio benchmarks: a relay that does nothing but copy bytes, with the same
//! shape as `wrap` (the server as a child process, one thread per direction, one `read` and one
//! `write` per chunk). What it adds over a direct connection is what any process in the middle
//! costs on the machine (two more pipe hops and thread wake-ups per round trip), before a single
//! check runs: `scripts/bench_python.py --floor target/release/examples/bare_relay`.
//!
//! Usage: bare_relay -- CMD [ARGS...]

use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn copy(mut from: impl Read, mut to: impl Write) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(1).collect();
    let Some((program, args)) = argv.split_first() else {
        eprintln!("usage: bare_relay -- CMD [ARGS...]");
        std::process::exit(2);
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("bare_relay: {program}: {e}");
            std::process::exit(2);
        });
    let to_child = child.stdin.take().expect("piped stdin");
    let from_child = child.stdout.take().expect("piped stdout");
    // Raw fds 0/1 through std's handles: `Stdout` is line-buffered, so flush after each chunk.
    let up = std::thread::spawn(move || copy(std::io::stdin().lock(), to_child));
    copy(from_child, std::io::stdout().lock());
    let _ = up.join();
    let status = child.wait().map(|s| s.code().unwrap_or(1)).unwrap_or(1);
    std::process::exit(status);
}
