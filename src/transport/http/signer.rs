//! Response signing (SPEC §4 "Server identity"): with `[identity] sign_responses = true`, every
//! JSON-RPC result `serve` sends to a client carries `result._meta["dev.mcp-warden/signature"]`
//! by the proxy's identity key, audience = the route's server name, fresh nonce, current time.
//!
//! Signing changes the message, so a signed result is re-serialized (SPEC §2 allows it for an
//! added signature); with signing off nothing here runs and bytes pass untouched. Error
//! responses have no `result` to hold the signature and go out unsigned; `connect` checks
//! signatures on results only. Server requests and notifications are not responses and are not
//! signed either.

use std::sync::Arc;

use serde_json::Value;

use super::Route;
use crate::admin::Metrics;
use crate::sig::message_scheme::sign_value;
use crate::sig::{new_nonce, SigningKey};

pub struct ResponseSigner {
    key: SigningKey,
    audience: String,
}

impl ResponseSigner {
    pub fn new(key: SigningKey, audience: &str) -> ResponseSigner {
        ResponseSigner {
            key,
            audience: audience.to_owned(),
        }
    }

    /// The message with every result in it signed (a batch element by element). `None`: nothing
    /// in it is a result, so the caller sends its bytes unchanged.
    pub fn sign(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        // The pipeline parsed these bytes strictly already; a cheap look first keeps
        // notifications and errors off the parse-and-reserialize path.
        if !bytes.windows(8).any(|w| w == b"\"result\"") {
            return None;
        }
        let mut value: Value = serde_json::from_slice(bytes).ok()?;
        let signed = match &mut value {
            Value::Array(items) => {
                let mut any = false;
                for item in items.iter_mut() {
                    if let Some(s) = self.sign_one(item) {
                        *item = s;
                        any = true;
                    }
                }
                any
            }
            one => match self.sign_one(one) {
                Some(s) => {
                    *one = s;
                    true
                }
                None => false,
            },
        };
        if !signed {
            return None;
        }
        serde_json::to_vec(&value).ok()
    }

    fn sign_one(&self, message: &Value) -> Option<Value> {
        let is_result = message.get("result").is_some() && message.get("method").is_none();
        if !is_result {
            return None;
        }
        match sign_value(message, &self.key, &self.audience, now_unix(), &new_nonce()) {
            Ok(v) => Some(v),
            Err(e) => {
                // A result that is not an object cannot hold `_meta`. It leaves unsigned and a
                // client that pinned this server refuses it: failing closed on its side.
                tracing::warn!("cannot sign a result for {}: {e}", self.audience);
                None
            }
        }
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What a server → client message passes on its way out of `serve`: the response signer (when
/// signing is on) and the admin metrics (upstream latency).
#[derive(Clone, Default)]
pub struct Egress {
    pub signer: Option<Arc<ResponseSigner>>,
    pub metrics: Option<Arc<Metrics>>,
}

impl Egress {
    pub fn of(route: &Route) -> Egress {
        Egress {
            signer: route.signer.clone(),
            metrics: route.guards.metrics.clone(),
        }
    }

    /// The final bytes of a message the pipeline let through: signed when signing is on and it
    /// holds a result, else `None` (send `bytes` as they are).
    pub fn finish(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.signer.as_ref().and_then(|s| s.sign(bytes))
    }

    pub fn upstream_took(&self, took: std::time::Duration) {
        if let Some(m) = &self.metrics {
            m.observe_upstream(took);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sig::message_scheme;

    #[test]
    fn signs_results_only_and_each_batch_element() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let s = ResponseSigner::new(key.clone(), "echo");
        let vk = key.verifying_key();
        let check = |v: &Value| {
            let sig = message_scheme::extract(v).unwrap().unwrap();
            assert_eq!(sig.aud, "echo");
            assert!(message_scheme::verify_with(v, &sig, &vk));
        };
        let out = s
            .sign(br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#)
            .unwrap();
        check(&serde_json::from_slice(&out).unwrap());
        let err = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"result"}}"#;
        assert!(s.sign(err).is_none());
        assert!(s
            .sign(br#"{"jsonrpc":"2.0","method":"n","params":{"result":1}}"#)
            .is_none());
        let batch =
            br#"[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"m"}}]"#;
        let out: Value = serde_json::from_slice(&s.sign(batch).unwrap()).unwrap();
        check(&out[0]);
        assert!(out[1].get("result").is_none());
        // A non-object result cannot be signed: left as it is.
        assert!(s.sign(br#"{"jsonrpc":"2.0","id":1,"result":5}"#).is_none());
    }
}
