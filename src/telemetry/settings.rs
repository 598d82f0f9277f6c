//! What the exporter is told: `[telemetry]` merged with the standard `OTEL_*` variables (read
//! through the config `EnvSource` seam, so tests pass maps).

use std::collections::HashMap;
use std::time::Duration;

use crate::config::EnvSource;
use crate::config::TelemetrySection;

/// The transport a span's `network.transport` names (OpenTelemetry MCP conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `wrap`: the client and the server speak over stdio.
    Pipe,
    /// `serve` and `connect`: streamable HTTP.
    Tcp,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Transport::Pipe => "pipe",
            Transport::Tcp => "tcp",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL; `/v1/logs`, `/v1/traces`, `/v1/metrics` are appended.
    pub endpoint: String,
    pub headers: HashMap<String, String>,
    pub service_name: String,
    pub resource: Vec<(String, String)>,
    /// Batches leave at least this often; metrics and the drop report follow the same beat.
    pub interval: Duration,
    /// One export request may take this long before it counts as failed.
    pub timeout: Duration,
    /// Audit lines waiting for the exporter; past this they are dropped (and counted).
    pub queue: usize,
    pub transport: Transport,
}

impl Settings {
    /// `None` when no endpoint is configured: telemetry off, nothing started. `Err` names what
    /// is wrong (an unsupported protocol, a malformed endpoint).
    pub fn resolve(
        section: &TelemetrySection,
        env: &dyn EnvSource,
        transport: Transport,
    ) -> Result<Option<Settings>, String> {
        let var = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
        let Some(endpoint) = var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .or_else(|| Some(section.otlp_endpoint.clone()).filter(|e| !e.trim().is_empty()))
        else {
            return Ok(None);
        };
        let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
        let host = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"));
        if host.is_none_or(|h| h.is_empty() || endpoint.parse::<hyper::Uri>().is_err()) {
            return Err(format!(
                "telemetry.otlp_endpoint {endpoint:?}: must be an http:// or https:// URL (OTLP/HTTP, e.g. http://127.0.0.1:4318)"
            ));
        }
        if let Some(p) = var("OTEL_EXPORTER_OTLP_PROTOCOL") {
            if p.trim() != "http/protobuf" {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL={p}: only http/protobuf is supported"
                ));
            }
        }
        let mut headers = parse_pairs(&section.headers);
        headers.extend(parse_pairs(
            &var("OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default(),
        ));
        let mut resource = parse_pairs_ordered(&section.resource_attributes);
        resource.extend(parse_pairs_ordered(
            &var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default(),
        ));
        let service_name = var("OTEL_SERVICE_NAME")
            .or_else(|| {
                resource
                    .iter()
                    .rev()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| section.service_name.clone());
        let timeout = var("OTEL_EXPORTER_OTLP_TIMEOUT")
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(section.timeout_ms);
        Ok(Some(Settings {
            endpoint,
            headers,
            service_name,
            resource,
            interval: Duration::from_millis(section.export_interval_ms.max(10)),
            timeout: Duration::from_millis(timeout.max(10)),
            queue: section.queue.max(1),
            transport,
        }))
    }

    pub fn url(&self, signal: &str) -> String {
        format!("{}/v1/{signal}", self.endpoint)
    }
}

/// `k1=v1,k2=v2` (W3C baggage style, values percent-decoded) as the OTel variables use it.
fn parse_pairs(s: &str) -> HashMap<String, String> {
    parse_pairs_ordered(s).into_iter().collect()
}

fn parse_pairs_ordered(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn off_without_an_endpoint() {
        let s = Settings::resolve(&TelemetrySection::default(), &env(&[]), Transport::Pipe);
        assert!(s.unwrap().is_none());
    }

    #[test]
    fn environment_over_file() {
        let mut section = TelemetrySection {
            otlp_endpoint: "http://file:4318".into(),
            headers: "a=1".into(),
            ..TelemetrySection::default()
        };
        section.resource_attributes = "deployment.environment=prod".into();
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318/"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20x, b = 2",
            ),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-res,team=sec"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "250"),
        ]);
        let s = Settings::resolve(&section, &e, Transport::Tcp)
            .unwrap()
            .unwrap();
        assert_eq!(s.url("logs"), "http://env:4318/v1/logs");
        assert_eq!(s.headers["a"], "1");
        assert_eq!(s.headers["authorization"], "Bearer x");
        assert_eq!(s.headers["b"], "2");
        assert_eq!(s.service_name, "from-res");
        assert_eq!(s.timeout, Duration::from_millis(250));
        assert!(s.resource.contains(&("team".into(), "sec".into())));
        let named = Settings::resolve(
            &section,
            &env(&[("OTEL_SERVICE_NAME", "edge")]),
            Transport::Pipe,
        )
        .unwrap()
        .unwrap();
        assert_eq!(named.service_name, "edge");
        assert_eq!(named.url("traces"), "http://file:4318/v1/traces");
    }

    #[test]
    fn unsupported_protocol_and_scheme_are_named() {
        let section = TelemetrySection {
            otlp_endpoint: "http://c:4318".into(),
            ..TelemetrySection::default()
        };
        let grpc = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert!(Settings::resolve(&section, &grpc, Transport::Pipe)
            .unwrap_err()
            .contains("http/protobuf"));
        for bad in ["grpc://c:4317", "http://", "c:4318", "http://a b"] {
            let section = TelemetrySection {
                otlp_endpoint: bad.into(),
                ..TelemetrySection::default()
            };
            assert!(
                Settings::resolve(&section, &env(&[]), Transport::Pipe).is_err(),
                "{bad}"
            );
        }
        let tls = TelemetrySection {
            otlp_endpoint: "https://api.honeycomb.io".into(),
            ..TelemetrySection::default()
        };
        let s = Settings::resolve(&tls, &env(&[]), Transport::Pipe);
        assert_eq!(
            s.unwrap().unwrap().url("logs"),
            "https://api.honeycomb.io/v1/logs"
        );
    }
}
