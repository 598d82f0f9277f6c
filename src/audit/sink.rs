//! A second destination for audit lines (OTLP export, `telemetry`): the file stays the durable
//! source of truth, a sink only gets a copy.

/// Called by the log with each complete line (without its newline), in chain order, while the
/// chain lock is held: an implementation must return at once (copy and queue, never block or
/// do I/O), or it would stall every relay thread.
pub trait RecordSink: Send + Sync {
    fn line(&self, line: &[u8]);
}
