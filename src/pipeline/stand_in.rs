//! Answers the proxy gives in place of the server's, one request at a time, for transports whose
//! upstream answers each request on its own exchange (`connect`'s HTTP upstream): the exchange
//! ended without the answer, or the answer was refused before any check may read it (a result
//! whose signature does not verify). Same bookkeeping as every other answer: the request leaves
//! the session's table, the client gets exactly one error, and the record says why.

use super::{deny, Outcome, Pipeline, Verdict};
use crate::audit::Direction;
use crate::codec::Id;
use crate::errors::Rejection;
use crate::session::Era;

impl Pipeline {
    /// The session's era as negotiated so far (the transport mirrors it in protocol headers).
    pub fn era(&self) -> Era {
        self.session().era.clone()
    }

    /// Whether an answer to `id` is still awaited: a client request in flight and not
    /// cancelled, or the proxy's own. A cancelled request whose exchange ended is forgotten
    /// here (MCP: it is not answered).
    pub fn awaits_answer(&self, id: &Id) -> bool {
        let mut session = self.session();
        if session.proxy_pending.contains_key(id) {
            return true;
        }
        match session.client_pending.get(id) {
            Some(p) if p.cancelled => {
                session.client_pending.remove(id);
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// `rejection` stands in for the server's answer to `id`. A client request gets the error
    /// (`Verdict::Rewrite`: it goes on to the client in the answer's place, as for
    /// `oversize_answer`); the proxy's own listing request fails (calls are judged without it);
    /// an id nothing waits for is dropped. One record in every case.
    pub fn answer_instead(&self, id: &Id, rejection: &Rejection) -> Outcome {
        let mut session = self.session();
        let mut record = self.record(&session, Direction::ServerToClient, 0);
        record.id = Some(id.to_string());
        deny(&mut record, rejection);
        if let Some(p) = session.client_pending.remove(id) {
            let routing = super::replies::answers(&mut session, id, &p);
            record.method = Some(p.method);
            record.tool = p.tool;
            let answer = rejection.to_response(Some(id), &record.audit_id);
            return Outcome::new(Verdict::Rewrite(answer), record).routed(routing);
        }
        if let Some(p) = session.proxy_pending.remove(id) {
            record.direction = Direction::Proxy;
            record.method = Some(p.method);
            drop(session);
            self.prefetch_failed();
        } else {
            record.reason = Some(format!(
                "{}; the answer matched no pending request",
                rejection.reason
            ));
        }
        Outcome::new(Verdict::Drop, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::INTERNAL_ERROR;

    #[test]
    fn a_stand_in_answers_a_pending_request_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = crate::audit::AuditLog::open_file(
            &dir.path().join("a.jsonl"),
            crate::audit::Fsync::Never,
        )
        .unwrap();
        let p = Pipeline::new(
            "test",
            crate::codec::Limits::default(),
            log,
            std::sync::Arc::new(super::super::Guards::default()),
        );
        let call = br#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#;
        assert_eq!(p.from_client(call).verdict, Verdict::Forward);
        let id = Id::Num("4".into());
        assert!(p.awaits_answer(&id));
        let rej = Rejection::new(
            INTERNAL_ERROR,
            "upstream.no_answer",
            "upstream_http",
            "gone",
        );
        let out = p.answer_instead(&id, &rej);
        let Verdict::Rewrite(bytes) = out.verdict else {
            panic!("answered")
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["id"], 4);
        assert_eq!(v["error"]["data"]["audit_id"], out.record.audit_id.as_str());
        assert_eq!(out.record.method.as_deref(), Some("ping"));
        // Whose fault: the rejection's source, in the record.
        let rej = rej.from(crate::errors::Source::Upstream);
        let p2 = p.answer_instead(&Id::Num("9".into()), &rej);
        assert_eq!(p2.record.fault, Some("upstream"));
        assert_eq!(out.record.fault, Some("downstream"));
        // Answered: nothing waits any more, a second stand-in is only a dropped record.
        assert!(!p.awaits_answer(&id));
        assert_eq!(p.answer_instead(&id, &rej).verdict, Verdict::Drop);
    }
}
