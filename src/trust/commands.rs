//! Entry points for the CLI: `trust [SERVER] [--json]` and `feedback SERVER +1|-1`.
//!
//! These write and read the store directly (no recorder): a CLI call is one short-lived
//! read-modify-write under the same lock the proxies use.

use std::io;

use super::buckets::History;
use super::events::{Event, Observation, Vote};
use super::report::TrustReport;
use super::score::compute;
use super::store::TrustStore;

/// Records an operator's vote and returns the server's new report.
pub fn feedback(store: &TrustStore, server: &str, vote: Vote, now: u64) -> io::Result<TrustReport> {
    let mut batch = History::new(server);
    batch.apply(&Event::new(now, Observation::Feedback(vote)));
    let merged = store.update(server, &batch, now)?;
    Ok(compute(&merged, now))
}

/// The report of one server; a server never seen reports as new (0.5, every factor `null`).
pub fn report(store: &TrustStore, server: &str, now: u64) -> io::Result<TrustReport> {
    Ok(compute(&store.load(server)?, now))
}

/// Reports of every server with a trust file, by name. A file that cannot be read is skipped and
/// named in the returned errors, so one bad file does not hide the others.
pub fn reports_all(store: &TrustStore, now: u64) -> io::Result<(Vec<TrustReport>, Vec<String>)> {
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for server in store.servers()? {
        match report(store, &server, now) {
            Ok(r) => reports.push(r),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Ok((reports, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_780_000_000;

    #[test]
    fn feedback_moves_the_feedback_factor_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        let up = feedback(&store, "fs", Vote::Up, T0).unwrap();
        let fb = |r: &TrustReport| {
            r.factors
                .iter()
                .find(|f| f.name == "operator_feedback")
                .and_then(|f| f.value)
        };
        assert_eq!(fb(&up), Some(0.6667));
        assert!(up.score > 0.5);
        assert_eq!(up.factors.iter().filter(|f| f.value.is_some()).count(), 1);
        let down = feedback(&store, "fs", Vote::Down, T0).unwrap();
        assert_eq!(fb(&down), Some(0.5));
        let again = feedback(&store, "fs", Vote::Down, T0).unwrap();
        assert!(again.score < 0.5);
    }

    #[test]
    fn unknown_server_reports_as_new_and_all_lists_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        let r = report(&store, "never-seen", T0).unwrap();
        assert_eq!(r.score, 0.5);
        feedback(&store, "b", Vote::Up, T0).unwrap();
        feedback(&store, "a", Vote::Down, T0).unwrap();
        std::fs::write(store.path_of("c").unwrap(), b"garbage").unwrap();
        let (all, errors) = reports_all(&store, T0).unwrap();
        let names: Vec<&str> = all.iter().map(|r| r.server.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("c.json"));
    }
}
