//! What the two end-to-end benchmarks (`examples/bench_stdio.rs`, `examples/bench_http/`) share,
//! included by both with `#[path]`: command-line helpers, `/proc` readings, medians, the table
//! and target lines, temporary state dirs. One copy, so that the two tables mean the same thing.

// Each benchmark uses a part of this module.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub type Res<T> = Result<T, String>;

// ---------------------------------------------------------------------------------------------
// Command line

/// `--flag VALUE` pairs over the process arguments.
pub struct Args(std::iter::Skip<std::env::Args>);

impl Args {
    pub fn new() -> Args {
        Args(std::env::args().skip(1))
    }

    pub fn flag(&mut self) -> Option<String> {
        self.0.next()
    }

    pub fn value(&mut self, name: &str) -> Res<String> {
        self.0.next().ok_or(format!("{name} needs a value"))
    }

    pub fn path(&mut self, name: &str) -> Res<PathBuf> {
        self.value(name).map(PathBuf::from)
    }

    /// A count; `_` separators allowed (`20_000`).
    pub fn num(&mut self, name: &str) -> Res<usize> {
        let s = self.value(name)?;
        s.replace('_', "")
            .parse()
            .map_err(|_| format!("{name}: not a number: {s}"))
    }
}

/// The warden and the server binaries, absolute: defaults are `<target>/release/mcp-warden`
/// (else `debug`) and `examples/<server_name>` next to the warden. `build` is the cargo command
/// named when one is missing.
pub fn binaries(
    warden: Option<PathBuf>,
    server: Option<PathBuf>,
    server_name: &str,
    build: &str,
) -> Res<(PathBuf, PathBuf)> {
    let warden = match warden {
        Some(w) => w,
        None => {
            let t = target_dir().ok_or("cannot find the target dir; pass --warden")?;
            let release = t.join("release").join("mcp-warden");
            if release.is_file() {
                release
            } else {
                t.join("debug").join("mcp-warden")
            }
        }
    };
    let server = server.unwrap_or_else(|| {
        warden
            .parent()
            .unwrap_or(Path::new("."))
            .join("examples")
            .join(server_name)
    });
    for (what, p) in [("--warden", &warden), ("--server", &server)] {
        if !p.is_file() {
            return Err(format!(
                "{what} {} does not exist (build it: {build})",
                p.display()
            ));
        }
    }
    // Absolute paths: the JSON summary should be unambiguous.
    Ok((
        fs::canonicalize(&warden).unwrap_or(warden),
        fs::canonicalize(&server).unwrap_or(server),
    ))
}

/// `--config FILE`, made absolute (and required to exist).
pub fn canonical_config(c: Option<PathBuf>) -> Res<Option<PathBuf>> {
    c.map(|c| fs::canonicalize(&c).map_err(|e| format!("--config {}: {e}", c.display())))
        .transpose()
}

/// The cargo target dir: the benchmarks live in `<target>/<profile>/examples/`.
fn target_dir() -> Option<PathBuf> {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(t));
    }
    let exe = std::env::current_exe().ok()?;
    let t = exe.parent()?.parent()?.parent()?.to_path_buf();
    if t.join("debug").is_dir() || t.join("release").is_dir() {
        Some(t)
    } else {
        Some(PathBuf::from("target"))
    }
}

/// "release" or "debug", from the warden's path.
pub fn build_profile(warden: &Path) -> String {
    warden
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------------------------
// /proc

/// user + system CPU time of `pid` (all its threads, not its children), µs.
pub fn cpu_us(pid: u32) -> u64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name (which may contain spaces) start at field 3; utime and
    // stime are fields 14 and 15.
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (ticks(14) + ticks(15)) * 1_000_000 / hz
}

/// Voluntary + involuntary context switches of all the threads of `pid` (live ones).
pub fn ctx_switches(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    let mut n = 0;
    for t in tasks.flatten() {
        let Ok(status) = fs::read_to_string(t.path().join("status")) else {
            continue;
        };
        n += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
            .sum::<u64>();
    }
    n
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`) or as a count (`Threads`); 0 when
/// the process or the field is gone.
pub fn status_field(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors of `pid`.
pub fn fds(pid: u32) -> u64 {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// The 1, 5 and 15 minute load averages: printed beside every figure (a busy machine's
/// wall-clock figures mean little).
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The audit files (`*.jsonl`) the proxy wrote under a state dir.
#[derive(Default, Clone, Copy)]
pub struct AuditStats {
    pub files: u64,
    pub lines: u64,
    pub bytes: u64,
}

impl AuditStats {
    pub fn of(dir: &Path) -> AuditStats {
        let mut s = AuditStats::default();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "jsonl") {
                    let b = fs::read(&p).unwrap_or_default();
                    s.files += 1;
                    s.bytes += b.len() as u64;
                    s.lines += b.iter().filter(|&&c| c == b'\n').count() as u64;
                }
            }
        }
        s
    }

    /// "records / bytes" per call.
    pub fn per_call(&self, calls: u64) -> String {
        let n = calls.max(1) as f64;
        format!(
            "{:.2} / {:.0}",
            self.lines as f64 / n,
            self.bytes as f64 / n
        )
    }

    pub fn to_json(self) -> Value {
        json!({"files": self.files, "lines": self.lines, "bytes": self.bytes})
    }
}

/// Raise the soft open-files limit to the hard one; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            let _ = libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur
}

// ---------------------------------------------------------------------------------------------
// Figures

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The result table: a label column, then direct, proxied and a comparison column.
pub struct Table(pub String);

const LABEL: usize = 34;
const COL: usize = 12;
const LAST: usize = 16;

impl Table {
    /// The title lines, the load averages, the rule and the column heads.
    pub fn new(title: &str, load_before: &str, load_after: &str) -> Table {
        let mut t = format!(
            "{title}\nload average before: {load_before}\nload average after:  {load_after}\n"
        );
        t += &Table::rule();
        t += &format!(
            "{:<LABEL$} {:>COL$} {:>COL$} {:>LAST$}\n",
            "", "direct", "proxied", "proxied/direct"
        );
        Table(t)
    }

    pub fn rule() -> String {
        format!("{}\n", "-".repeat(LABEL + 2 * COL + LAST + 3))
    }

    /// Throughput: both figures and their ratio.
    pub fn ratio(&mut self, name: &str, d: f64, p: f64) {
        self.0 += &format!(
            "{name:<LABEL$} {d:>COL$.0} {p:>COL$.0} {:>w$.3}x\n",
            p / d,
            w = LAST - 1
        );
    }

    /// The heading of the rows that show `proxied − direct`.
    pub fn added_head(&mut self) {
        self.0 += &format!(
            "{:<LABEL$} {:>COL$} {:>COL$} {:>LAST$}\n",
            "", "", "", "added (p − d)"
        );
    }

    /// A latency: both figures and the proxy's addition.
    pub fn added(&mut self, name: &str, d: f64, p: f64) {
        self.0 += &format!(
            "{name:<LABEL$} {d:>COL$.1} {p:>COL$.1} {:>LAST$.1}\n",
            p - d
        );
    }

    /// A figure of one side, or of both.
    pub fn value(&mut self, name: &str, d: Option<f64>, p: f64) {
        let d = d.map(|d| format!("{d:.1}")).unwrap_or_default();
        self.0 += &format!("{name:<LABEL$} {d:>COL$} {p:>COL$.1}\n");
    }

    /// A proxied-only figure already formatted.
    pub fn text(&mut self, name: &str, p: &str) {
        self.0 += &format!("{name:<LABEL$} {:>COL$} {p:>COL$}\n", "");
    }

    pub fn end(&mut self, footnote: &str) {
        self.0 += &Table::rule();
        self.0 += footnote;
    }

    /// The targets with pass/FAIL marks.
    pub fn targets(&mut self, targets: &[Target]) {
        self.0 += "targets (issue 16):\n";
        for t in targets {
            let mark = if t.pass { "pass" } else { "FAIL" };
            self.0 += &format!("  [{mark}] {:<44} {}\n", t.name, t.value);
        }
    }
}

/// One of the targets and how this run did.
pub struct Target {
    pub name: String,
    pub pass: bool,
    pub value: String,
}

impl Target {
    /// `value` at least `min` (a ratio to direct).
    pub fn ratio_at_least(name: &str, value: f64, min: f64) -> Target {
        Target {
            name: format!("{name} >= {min}x direct"),
            pass: value >= min,
            value: format!("{value:.3}x"),
        }
    }

    /// `value` at most `max` (`unit` printed after both).
    pub fn at_most(name: &str, value: f64, max: f64, unit: &str) -> Target {
        Target {
            name: format!("{name} <= {max} {unit}"),
            pass: value <= max,
            value: format!("{value:.1} {unit}"),
        }
    }

    pub fn json(ts: &[Target]) -> Value {
        ts.iter()
            .map(|t| json!({"target": t.name, "pass": t.pass, "value": t.value}))
            .collect()
    }
}

/// Write the `--json` summary.
pub fn write_json(path: &Path, summary: &Value) -> Res<()> {
    let text = serde_json::to_string_pretty(summary).map_err(|e| e.to_string())?;
    fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Setup

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Res<TempDir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&p).map_err(|e| format!("creating {}: {e}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
