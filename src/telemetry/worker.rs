//! The export thread: audit lines in, OTLP logs, spans and metric updates out, in batches.
//! It is the only thread that waits for the collector; the data path only ever queues.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, SdkLogRecord, SdkLogger};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use serde_json::Value;

use super::backoff::Backoff;
use super::metrics::Instruments;
use super::queue::{Drops, Lines};
use super::spans::Spans;

/// A batch leaves when it reaches this size, or at the interval. The queue wakes the worker
/// at this many lines too.
pub const BATCH: usize = 512;

pub struct Worker {
    pub lines: Lines,
    pub drops: Arc<Drops>,
    pub runtime: tokio::runtime::Handle,
    pub logs_out: opentelemetry_otlp::LogExporter,
    pub spans_out: opentelemetry_otlp::SpanExporter,
    pub logger: SdkLogger,
    pub scope: InstrumentationScope,
    pub spans: Spans,
    pub instruments: Instruments,
    pub interval: Duration,
    pub backoff: Backoff,
}

impl Worker {
    pub fn run(mut self) {
        let mut logs: Vec<SdkLogRecord> = Vec::with_capacity(BATCH);
        let mut spans: Vec<SpanData> = Vec::with_capacity(BATCH);
        let mut due = Instant::now() + self.interval;
        let mut spare = Vec::new();
        loop {
            let taken = self.lines.take(due, spare);
            for line in taken.lines() {
                // The last take (shutdown) is converted whatever the backoff says: one
                // bounded try, and what the collector got is what was sent.
                if !taken.last && self.backoff.skipping(Instant::now()) {
                    self.drops.export_failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                self.line(line, &mut logs, &mut spans);
                if logs.len() >= BATCH {
                    self.flush(&mut logs, &mut spans);
                }
            }
            if taken.last {
                self.flush(&mut logs, &mut spans);
                return;
            }
            spare = taken.buf;
            if logs.len() >= BATCH || spans.len() >= BATCH || Instant::now() >= due {
                self.flush(&mut logs, &mut spans);
                due = Instant::now() + self.interval;
            }
        }
    }

    fn line(&mut self, line: &[u8], logs: &mut Vec<SdkLogRecord>, spans: &mut Vec<SpanData>) {
        let Ok(Value::Object(rec)) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        let ts = rec
            .get("ts")
            .and_then(Value::as_str)
            .and_then(crate::timefmt::parse)
            .unwrap_or_else(SystemTime::now);
        self.instruments.line(&rec);
        let (ctx, ended) = self.spans.observe(&rec, ts);
        if let Some(e) = ended {
            self.instruments.ended(&e);
            spans.extend(e.spans);
        }
        logs.push(super::logs::record(&self.logger, &rec, ts, ctx.as_ref()));
    }

    fn flush(&mut self, logs: &mut Vec<SdkLogRecord>, spans: &mut Vec<SpanData>) {
        if !logs.is_empty() {
            let n = logs.len() as u64;
            let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                logs.iter().map(|r| (r, &self.scope)).collect();
            let sent = self
                .runtime
                .block_on(self.logs_out.export(LogBatch::new(&refs)));
            drop(refs);
            match sent {
                Ok(()) => self.backoff.succeeded(),
                Err(e) => {
                    self.drops.export_failed.fetch_add(n, Ordering::Relaxed);
                    self.backoff.failed(Instant::now());
                    tracing::warn!("OTLP log export failed ({n} records): {e}");
                }
            }
            logs.clear();
        }
        if !spans.is_empty() {
            let batch = std::mem::take(spans);
            if let Err(e) = self.runtime.block_on(self.spans_out.export(batch)) {
                tracing::warn!("OTLP span export failed: {e}");
            }
        }
    }
}
