//! Worst-case strict parsing (issue 9): how long `codec::decode` takes on the most expensive
//! messages a peer may send before any authentication, each at the 4 MiB message cap.
//!
//! - maximal keys, cap raised so the whole object is really checked for duplicates;
//! - maximal keys under the default cap (4096), refused early;
//! - maximal nesting: 64 levels (the limit) repeated to fill 4 MiB, and 4 MiB of `[`
//!   (refused at level 65).
//!
//! Run by hand: `cargo run --release --example bench_parse` (the bound is 50 ms of CPU per
//! message in a release build; a debug build is several times slower). CPU time is measured,
//! not wall time, so a busy machine does not decide. Exits 1 when a case is over budget.

use std::time::{Duration, Instant};

use mcp_warden::codec::{self, strict_json, Limits};

const SIZE: usize = 4 * 1024 * 1024;
const BUDGET: Duration = Duration::from_millis(50);

/// `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{…}}}` whose
/// arguments object has as many distinct short keys as fit in `SIZE` bytes.
fn max_keys() -> (Vec<u8>, usize) {
    let head =
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"#;
    let tail = b"}}}";
    let mut m = Vec::with_capacity(SIZE);
    m.extend_from_slice(head);
    let mut n = 0usize;
    let mut key = String::new();
    loop {
        key.clear();
        // Base-62-ish short keys: the shortest distinct keys, the most keys per byte.
        let mut i = n;
        loop {
            let d = (i % 62) as u8;
            key.push(match d {
                0..=9 => (b'0' + d) as char,
                10..=35 => (b'a' + d - 10) as char,
                _ => (b'A' + d - 36) as char,
            });
            i /= 62;
            if i == 0 {
                break;
            }
        }
        let item = format!("{}\"{key}\":0", if n > 0 { "," } else { "" });
        if m.len() + item.len() + tail.len() > SIZE {
            break;
        }
        m.extend_from_slice(item.as_bytes());
        n += 1;
    }
    m.extend_from_slice(tail);
    (m, n)
}

/// Arrays nested to the limit, side by side, filling `SIZE` bytes.
fn max_nesting(depth: usize) -> Vec<u8> {
    let head = br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":["#;
    let tail = b"]}}";
    // The message's own two levels (object, params) and the array come first.
    let unit = format!("{}{}", "[".repeat(depth - 3), "]".repeat(depth - 3));
    let mut m = Vec::with_capacity(SIZE);
    m.extend_from_slice(head);
    let mut first = true;
    while m.len() + unit.len() + 1 + tail.len() <= SIZE {
        if !first {
            m.push(b',');
        }
        first = false;
        m.extend_from_slice(unit.as_bytes());
    }
    m.extend_from_slice(tail);
    m
}

/// CPU time of this thread: on a shared, busy machine wall time measures the neighbours.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The best of a few runs (CPU time of the strict check alone, and of the whole `decode`, which
/// also reads the envelope), so that one scheduling hiccup does not decide.
fn time(name: &str, msg: &[u8], limits: &Limits, expect_ok: bool) -> bool {
    let (mut strict, mut whole, mut wall) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        let c0 = cpu_now();
        let _ = strict_json::validate(msg, limits);
        strict = strict.min(cpu_now() - c0);
        let (w0, c0) = (Instant::now(), cpu_now());
        let outcome = codec::decode(msg, limits);
        whole = whole.min(cpu_now() - c0);
        wall = wall.min(w0.elapsed());
        match (&outcome, expect_ok) {
            (Ok(_), true) | (Err(_), false) => {}
            (Ok(_), false) => panic!("{name}: expected a refusal"),
            (Err(r), true) => panic!("{name}: refused: {}", r.reason),
        }
    }
    let ok = whole <= BUDGET;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name:<44} {:>8} B  strict {:>8.2} ms  decode {:>8.2} ms cpu ({:>8.2} ms wall)  {}",
        msg.len(),
        ms(strict),
        ms(whole),
        ms(wall),
        if ok { "ok" } else { "OVER BUDGET" }
    );
    ok
}

fn main() {
    let profile = if cfg!(debug_assertions) {
        "debug build (several times slower than release)"
    } else {
        "optimized build"
    };
    println!(
        "bench_parse: worst-case strict parsing, {profile}, budget {BUDGET:?} CPU per message"
    );
    let defaults = Limits::default();
    let raised = Limits {
        max_keys_per_object: usize::MAX,
        ..defaults
    };
    let (keys, n) = max_keys();
    let mut all = true;
    all &= time(
        &format!("{n} keys in one object (cap raised)"),
        &keys,
        &raised,
        true,
    );
    all &= time(
        &format!(
            "{n} keys in one object (default cap {})",
            defaults.max_keys_per_object
        ),
        &keys,
        &defaults,
        false,
    );
    let nested = max_nesting(defaults.max_depth);
    all &= time(
        &format!("nesting {} levels, repeated", defaults.max_depth),
        &nested,
        &defaults,
        true,
    );
    let open = vec![b'['; SIZE];
    all &= time(
        "4 MiB of `[` (refused at level 65)",
        &open,
        &defaults,
        false,
    );
    // The same work the duplicate check does for the many small objects of a big listing.
    let small: Vec<String> = (0..SIZE / 40)
        .map(|i| format!(r#"{{"a":{i},"b":"x","c":[1]}}"#))
        .collect();
    let list = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":{{"items":[{}]}}}}"#,
        small.join(",")
    );
    let list = list.as_bytes();
    if list.len() <= SIZE {
        all &= time("many small objects", list, &defaults, true);
    }
    std::process::exit(if all { 0 } else { 1 });
}
