//! Where a server message goes, read from the session's one table of requests in flight
//! (`Session::client_pending`). A transport that answers each request on a stream of its own
//! (`serve`'s stdio upstream: one process, a stream per POST) attaches that stream to the
//! requests it sends (`reply_to`); the pipeline hands it back in the `Routing` of their answers
//! and of progress about them. Nothing else keeps ids: one table says what was asked, how to
//! judge its answer, and where the answer goes.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Pipeline, Routing};
use crate::codec::envelope::{Envelope, Kind};
use crate::codec::Id;
use crate::session::{Pending, ReplyTo, Session};

impl Pipeline {
    /// Attach `to` to the requests among `asked` still waiting for their answers (before they
    /// are written to the server, so no answer can come first). Returns how many it was
    /// attached to: the answers `to` is owed.
    pub fn reply_to(&self, asked: &[Id], to: &ReplyTo) -> usize {
        let mut session = self.session();
        let s = &mut *session;
        let mut owed = 0;
        for id in asked {
            let Some(p) = s.client_pending.get_mut(id) else {
                continue;
            };
            if p.cancelled || p.reply.is_some() {
                continue;
            }
            p.reply = Some(to.clone());
            if let Some(token) = &p.progress {
                s.progress.insert(token.clone(), id.clone());
            }
            owed += 1;
        }
        owed
    }

    /// Requests judged but never written to the server (its input was closed or full): they
    /// leave the table, since no answer will come for them.
    pub fn unsent(&self, asked: &[Id]) {
        let mut session = self.session();
        for id in asked {
            if let Some(p) = session.client_pending.remove(id) {
                forget_progress(&mut session, id, &p);
            }
        }
    }
}

/// The routing of a server line judged earlier (a notification the flood bound held back and
/// now releases): the request its progress token names, else the session's stream.
pub(super) fn routing_of_line(s: &Session, line: &[u8]) -> Routing {
    if s.progress.is_empty() {
        return Routing::Session;
    }
    match std::str::from_utf8(line).ok().map(Envelope::parse) {
        Some(Ok(env)) => about(s, &env),
        _ => Routing::Session,
    }
}

/// The routing of an answer to `p` (just taken out of the table).
pub(super) fn answers(s: &mut Session, id: &Id, p: &Pending) -> Routing {
    forget_progress(s, id, p);
    // A cancelled request lost its stream when the cancellation was judged (`client.rs`).
    Routing::Answers(p.reply.clone())
}

/// A request left the table: its progress token no longer leads to it.
fn forget_progress(s: &mut Session, id: &Id, p: &Pending) {
    if let Some(token) = &p.progress {
        if s.progress.get(token) == Some(id) {
            s.progress.remove(token);
        }
    }
}

/// A server notification about a request in flight (`params.progressToken`): that request's
/// stream. Costs nothing while no stream was attached to any request (every transport but
/// `serve`'s stdio upstream).
pub(super) fn about(s: &Session, env: &Envelope) -> Routing {
    if s.progress.is_empty() || env.kind != Kind::Notification {
        return Routing::Session;
    }
    #[derive(Deserialize)]
    struct Progress<'a> {
        #[serde(rename = "progressToken", borrow)]
        token: &'a RawValue,
    }
    let Some(token) = env
        .params
        .and_then(|p| serde_json::from_str::<Progress>(p.get()).ok())
    else {
        return Routing::Session;
    };
    let token = token.token.get();
    let request = s
        .progress
        .get(token)
        .and_then(|id| s.client_pending.get(id));
    match request {
        Some(p) if p.progress.as_deref() == Some(token) => {
            p.reply.clone().map_or(Routing::Session, Routing::About)
        }
        _ => Routing::Session,
    }
}
