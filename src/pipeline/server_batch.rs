//! A server's batch (2025-03-26, the one revision that has them): never waved through whole.
//! Every element is judged as if it came alone (`server_single`: ids, scans, pins, server-request
//! rules, flood bound), with a record of its own; what passes goes on as one smaller batch, the
//! proxy's refusals of server requests go back to the server as one batch.

use std::time::Instant;

use serde_json::value::RawValue;

use super::client::{allow, batch_of};
use super::flood;
use super::{deny, Pipeline, Routing, Verdict};
use crate::audit::{Decision, Direction, Record};
use crate::codec::Envelope;
use crate::errors::{Rejection, Source, INVALID_REQUEST};
use crate::session::Session;

impl Pipeline {
    /// A server batch (2025-03-26): every element judged on its own with a record of its own;
    /// what passes goes on as one smaller batch (the original bytes when all pass unchanged),
    /// the proxy's answers to refused server requests go back to the server as one batch.
    pub(super) fn server_batch(
        &self,
        session: &mut Session,
        items: &[&RawValue],
        line: &[u8],
        record: &mut Record,
    ) -> (Verdict, Routing) {
        record.method = Some("batch".into());
        let mut onward: Vec<Vec<u8>> = Vec::new();
        let mut back: Vec<Vec<u8>> = Vec::new();
        let mut routings = Vec::new();
        let mut unchanged = true;
        for item in items {
            let bytes = item.get().as_bytes();
            let mut sub = self.record(session, Direction::ServerToClient, bytes.len());
            match Envelope::parse(item.get()) {
                Ok(env) => match self.server_single(session, &env, bytes, &mut sub) {
                    (Verdict::Forward, routing) => {
                        onward.push(bytes.to_vec());
                        routings.push(routing);
                    }
                    (Verdict::Rewrite(b), routing) => {
                        onward.push(b);
                        routings.push(routing);
                        unchanged = false;
                    }
                    (Verdict::Answer(a), _) => {
                        back.push(a);
                        unchanged = false;
                    }
                    (Verdict::Sample(_), _) => {
                        // The backend answers one request at a time, never inside a batch:
                        // refused back to the server rather than waved on to the client.
                        let r = Rejection::new(
                            INVALID_REQUEST,
                            "inference.batch_refused",
                            "batch",
                            "a sampling request routed to the inference backend cannot come inside a batch; send it on its own",
                        )
                        .from(Source::Upstream);
                        back.push(r.to_response(env.id.as_ref(), &sub.audit_id));
                        deny(&mut sub, &r);
                        unchanged = false;
                    }
                    (_, _) => unchanged = false,
                },
                Err(e) => {
                    let r = Rejection::invalid_envelope(e.reason, e.id).from(Source::Upstream);
                    deny(&mut sub, &r);
                    unchanged = false;
                }
            }
            // Shed by the flood bound: counted in its window's one record, as alone.
            if sub.event != flood::SUPPRESSED {
                sub.event = format!("batch.{}", sub.event);
            }
            self.finish(sub, Instant::now());
        }
        record.decision = if unchanged {
            Decision::Allow
        } else {
            Decision::Rewrite
        };
        let routing = Routing::Batch(routings);
        let verdict = match (onward.is_empty(), back.is_empty()) {
            (false, true) if unchanged => allow(line, record),
            (false, true) => Verdict::Rewrite(batch_of(&onward)),
            (false, false) => Verdict::Split {
                forward: batch_of(&onward),
                answer: batch_of(&back),
            },
            (true, false) => Verdict::Answer(batch_of(&back)),
            (true, true) => Verdict::Drop,
        };
        (verdict, routing)
    }
}
