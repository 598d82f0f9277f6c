//! Command-line options.

use std::fs;
use std::path::{Path, PathBuf};

use super::Res;

const USAGE: &str = "\
bench_http: a Streamable HTTP echo server measured directly and through `mcp-warden serve`

Options:
  --warden PATH      mcp-warden binary (default: target/release/mcp-warden if present,
                     else target/debug/mcp-warden)
  --server PATH      echo server binary (default: examples/echo_http_server next to the warden)
  --calls N          measured calls per phase, split over the connections (default 10000)
  --warmup N         warm-up calls per connection (default 500)
  --conc N           connections of the concurrent phase (default 8)
  --rounds N         rounds; each runs direct and proxied, alternating which goes first
                     (default 3)
  --streams N        idle SSE streams held open for the memory figure (default 1000; 0: skip)
  --payload BYTES    length of the echoed text argument (default 13: \"hello, warden\")
  --config FILE      base config for serve (its [[servers]] entry is appended by the bench)
  --serve-env K=V    extra environment for serve (repeatable), e.g. TOKIO_WORKER_THREADS=1
  --json FILE        also write a JSON summary to FILE
  -h, --help         this text";

pub struct Opts {
    pub warden: PathBuf,
    pub server: PathBuf,
    pub calls: usize,
    pub warmup: usize,
    pub conc: usize,
    pub rounds: usize,
    pub streams: usize,
    pub text: String,
    pub config: Option<PathBuf>,
    pub serve_env: Vec<(String, String)>,
    pub json: Option<PathBuf>,
}

pub fn parse_args() -> Res<Opts> {
    let (mut warden, mut server) = (None, None);
    let mut o = Opts {
        warden: PathBuf::new(),
        server: PathBuf::new(),
        calls: 10_000,
        warmup: 500,
        conc: 8,
        rounds: 3,
        streams: 1_000,
        text: "hello, warden".into(),
        config: None,
        serve_env: Vec::new(),
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let num = |s: String, name: &str| -> Res<usize> {
            s.replace('_', "")
                .parse()
                .map_err(|_| format!("{name}: not a number: {s}"))
        };
        match a.as_str() {
            "--warden" => warden = Some(PathBuf::from(val("--warden")?)),
            "--server" => server = Some(PathBuf::from(val("--server")?)),
            "--calls" => o.calls = num(val("--calls")?, "--calls")?,
            "--warmup" => o.warmup = num(val("--warmup")?, "--warmup")?,
            "--conc" => o.conc = num(val("--conc")?, "--conc")?,
            "--rounds" => o.rounds = num(val("--rounds")?, "--rounds")?,
            "--streams" => o.streams = num(val("--streams")?, "--streams")?,
            "--payload" => o.text = "x".repeat(num(val("--payload")?, "--payload")?),
            "--config" => o.config = Some(PathBuf::from(val("--config")?)),
            "--serve-env" => {
                let kv = val("--serve-env")?;
                let (k, v) = kv.split_once('=').ok_or("--serve-env wants KEY=VALUE")?;
                o.serve_env.push((k.to_owned(), v.to_owned()));
            }
            "--json" => o.json = Some(PathBuf::from(val("--json")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if o.calls == 0 || o.rounds == 0 || o.conc == 0 {
        return Err("--calls, --rounds and --conc must be at least 1".into());
    }
    // This example lives in <target>/<profile>/examples/.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .ok_or("cannot find the target dir; pass --warden")?;
    let warden = warden.unwrap_or_else(|| {
        let release = target.join("release/mcp-warden");
        if release.is_file() {
            release
        } else {
            target.join("debug/mcp-warden")
        }
    });
    let server = server.unwrap_or_else(|| {
        warden
            .parent()
            .unwrap_or(Path::new("."))
            .join("examples/echo_http_server")
    });
    for (what, p) in [("--warden", &warden), ("--server", &server)] {
        if !p.is_file() {
            return Err(format!(
                "{what} {} does not exist (build it: cargo build --release --bin mcp-warden --example echo_http_server --example bench_http)",
                p.display()
            ));
        }
    }
    o.warden = fs::canonicalize(&warden).unwrap_or(warden);
    o.server = fs::canonicalize(&server).unwrap_or(server);
    if let Some(c) = o.config.take() {
        o.config =
            Some(fs::canonicalize(&c).map_err(|e| format!("--config {}: {e}", c.display()))?);
    }
    Ok(o)
}
