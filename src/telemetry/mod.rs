//! OpenTelemetry export (SPEC §8 sinks, §9): the audit trail as OTLP logs, one span per
//! JSON-RPC request (MCP semantic conventions), and metrics, over OTLP/HTTP protobuf.
//!
//! Everything is derived from the audit lines: the log hands each line to a bounded queue
//! (`queue.rs`, never waits, drops counted), one export thread turns lines into logs, spans
//! and metric updates and sends them in batches. A slow or dead collector therefore costs the
//! data path one copy under a short lock per record (the export thread is woken once per
//! batch, not per line), never a wait.
//!
//! | file           | job                                                           |
//! |----------------|---------------------------------------------------------------|
//! | `settings.rs`  | `[telemetry]` + `OTEL_*` variables → endpoint, headers, resource |
//! | `queue.rs`     | the audit log's sink: bounded, batched wake-ups, drops counted |
//! | `worker.rs`    | the export thread: batches, interval, final drain             |
//! | `logs.rs`      | an audit line → an OTLP log record                            |
//! | `spans.rs`     | request/answer lines → spans (MCP conventions), child spans   |
//! | `metrics.rs`   | counters and duration histograms                              |
//! | `backoff.rs`   | after a failed export: lines counted, not converted, a while  |
//! | `drops.rs`     | one audit record and a metric per interval with drops         |
//! | `http.rs`      | the exporters' hyper client on a runtime of its own           |
//! | `traceparent.rs` | W3C `traceparent` from `params._meta`                       |
//!
//! Propagation towards the server: the proxy does not inject its own span into messages it
//! forwards. A message that passes unchanged leaves as the exact bytes that came in (SPEC §2),
//! so the client's own `traceparent` reaches the server untouched: the server's spans join the
//! client's trace as siblings of the proxy's span rather than its children.

pub mod backoff;
pub mod drops;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod queue;
pub mod settings;
pub mod spans;
pub mod traceparent;
pub mod worker;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use opentelemetry::logs::LoggerProvider as _;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::logs::{LogExporter as _, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SpanExporter as _;
use opentelemetry_sdk::Resource;

use crate::audit::AuditLog;
pub use settings::{Settings, Transport};

/// A running exporter. `shutdown` sends what is queued (bounded by the export timeout).
pub struct Telemetry {
    runtime: Option<tokio::runtime::Runtime>,
    /// Ends the worker's wait (it may be waiting out a long interval) and its loop.
    stop: queue::Stopper,
    worker: Option<std::thread::JoinHandle<()>>,
    reporter: drops::Reporter,
    meters: SdkMeterProvider,
    timeout: Duration,
    audit: Weak<AuditLog>,
}

impl Telemetry {
    /// Start exporting every line `audit` writes from now on.
    pub fn start(
        settings: &Settings,
        audit: &Arc<AuditLog>,
        server: &str,
    ) -> Result<Telemetry, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otel-http")
            .enable_all()
            .build()
            .map_err(|e| format!("telemetry runtime: {e}"))?;
        let client = http::HyperExport::new(runtime.handle().clone(), settings.timeout)?;
        let mut attrs: Vec<KeyValue> = settings
            .resource
            .iter()
            .filter(|(k, _)| k != "service.name")
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        attrs.push(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
        let resource = Resource::builder_empty()
            .with_service_name(settings.service_name.clone())
            .with_attributes(attrs)
            .build();
        let err = |what: &str, e: &dyn std::fmt::Display| format!("OTLP {what} exporter: {e}");
        let mut logs_out = opentelemetry_otlp::LogExporter::builder()
            .with_http()
            .with_http_client(client.clone())
            .with_endpoint(settings.url("logs"))
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(settings.timeout)
            .with_headers(settings.headers.clone())
            .build()
            .map_err(|e| err("log", &e))?;
        let mut spans_out = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client.clone())
            .with_endpoint(settings.url("traces"))
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(settings.timeout)
            .with_headers(settings.headers.clone())
            .build()
            .map_err(|e| err("span", &e))?;
        let metrics_out = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(settings.url("metrics"))
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(settings.timeout)
            .with_headers(settings.headers.clone())
            .build()
            .map_err(|e| err("metric", &e))?;
        logs_out.set_resource(&resource);
        spans_out.set_resource(&resource);
        let meters = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(
                PeriodicReader::builder(metrics_out)
                    .with_interval(settings.interval)
                    .build(),
            )
            .build();
        let scope = InstrumentationScope::builder("mcp-warden")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let instruments = metrics::Instruments::new(&meters.meter_with_scope(scope.clone()));
        // A provider without processors: it only makes records, the worker batches them.
        let logger = SdkLoggerProvider::builder()
            .build()
            .logger_with_scope(scope.clone());
        let drops = Arc::new(queue::Drops::default());
        let (sink, lines) = queue::bounded(settings.queue, worker::BATCH, drops.clone());
        let stop = sink.stopper();
        let worker = worker::Worker {
            lines,
            drops: drops.clone(),
            runtime: runtime.handle().clone(),
            logs_out,
            spans_out,
            logger,
            scope: scope.clone(),
            spans: spans::Spans::new(settings.transport, scope),
            instruments: instruments.clone(),
            interval: settings.interval,
            backoff: backoff::Backoff::default(),
        };
        let worker = std::thread::Builder::new()
            .name("otel-export".into())
            .spawn(move || worker.run())
            .map_err(|e| format!("telemetry thread: {e}"))?;
        audit.set_sink(Arc::new(sink));
        let reporter = drops::Reporter::start(
            Arc::downgrade(audit),
            server,
            drops,
            instruments.dropped.clone(),
            settings.interval,
        );
        Ok(Telemetry {
            runtime: Some(runtime),
            stop,
            worker: Some(worker),
            reporter,
            meters,
            timeout: settings.timeout,
            audit: Arc::downgrade(audit),
        })
    }

    /// Report the last drops, sign the audit tail (so the final checkpoint is exported too),
    /// send what is queued and the metrics. Waits at most the export timeout (5 s at most):
    /// a dead collector must not hold the proxy's exit.
    pub fn shutdown(mut self) {
        let deadline = Instant::now() + self.timeout.min(Duration::from_secs(5));
        self.reporter.stop();
        if let Some(log) = self.audit.upgrade() {
            log.checkpoint_now();
        }
        self.stop.stop();
        let meters = self.meters.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let worker = self.worker.take();
        let _ = std::thread::Builder::new()
            .name("otel-shutdown".into())
            .spawn(move || {
                if let Some(w) = worker {
                    let _ = w.join();
                }
                let _ = meters.shutdown();
                let _ = done_tx.send(());
            });
        let _ = done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Start OTLP export for `audit` when the configuration asks for it. Errors are reported on
/// stderr and leave export off: telemetry is an observer, the proxy runs without it.
pub fn start_from_config(
    config: &crate::config::Config,
    env: &dyn crate::config::EnvSource,
    transport: Transport,
    audit: &Arc<AuditLog>,
    server: &str,
) -> Option<Telemetry> {
    let settings = match Settings::resolve(&config.telemetry, env, transport) {
        Ok(Some(s)) => s,
        Ok(None) => return None,
        Err(e) => {
            eprintln!("mcp-warden: telemetry off: {e}");
            return None;
        }
    };
    match Telemetry::start(&settings, audit, server) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("mcp-warden: telemetry off: {e}");
            None
        }
    }
}
