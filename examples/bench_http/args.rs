//! Command-line options.

use std::path::PathBuf;

use super::bench_common::{binaries, canonical_config, Args};
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
  --stdio-upstream PATH  serve in front of this stdio server (`[[servers]] command`, e.g.
                     examples/echo_server) instead of the HTTP echo server; direct rounds
                     still measure the HTTP echo server, the baseline of the ratio
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
    /// Proxied rounds go to this stdio server instead of the HTTP echo server.
    pub stdio_upstream: Option<PathBuf>,
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
        stdio_upstream: None,
        serve_env: Vec::new(),
        json: None,
    };
    let mut args = Args::new();
    while let Some(a) = args.flag() {
        match a.as_str() {
            "--warden" => warden = Some(args.path("--warden")?),
            "--server" => server = Some(args.path("--server")?),
            "--calls" => o.calls = args.num("--calls")?,
            "--warmup" => o.warmup = args.num("--warmup")?,
            "--conc" => o.conc = args.num("--conc")?,
            "--rounds" => o.rounds = args.num("--rounds")?,
            "--streams" => o.streams = args.num("--streams")?,
            "--payload" => o.text = "x".repeat(args.num("--payload")?),
            "--config" => o.config = Some(args.path("--config")?),
            "--stdio-upstream" => o.stdio_upstream = Some(args.path("--stdio-upstream")?),
            "--serve-env" => {
                let kv = args.value("--serve-env")?;
                let (k, v) = kv.split_once('=').ok_or("--serve-env wants KEY=VALUE")?;
                o.serve_env.push((k.to_owned(), v.to_owned()));
            }
            "--json" => o.json = Some(args.path("--json")?),
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
    (o.warden, o.server) = binaries(
        warden,
        server,
        "echo_http_server",
        "cargo build --release --bin mcp-warden --example echo_http_server --example bench_http",
    )?;
    o.config = canonical_config(o.config.take())?;
    Ok(o)
}
