//! The SSE parser: no panic, bounded (an event over the cap is refused), the same events
//! whatever the chunking, and every event survives `encode` → parse unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_warden::transport::http::sse::{Event, Parser};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let whole = feed(stream, &[stream.len()]);
    // Two other chunkings: at a fuzzed point, and byte by byte.
    let at = (split as usize).min(stream.len());
    assert_eq!(whole, feed(stream, &[at, stream.len() - at]), "chunking changed the events");
    assert_eq!(
        whole,
        feed(stream, &vec![1; stream.len()]),
        "byte-by-byte feeding changed the events"
    );
    let Ok(events) = whole else {
        return;
    };
    for ev in &events {
        if let Some(d) = &ev.data {
            assert!(d.len() <= MAX, "an event over the cap was handed out");
        }
        let wire = ev.encode(None);
        let mut p = Parser::new(usize::MAX);
        let again = p.push(&wire).expect("no cap");
        assert_eq!(again, vec![ev.clone()], "encode → parse changed the event");
    }
});

fn feed(stream: &[u8], sizes: &[usize]) -> Result<Vec<Event>, ()> {
    let mut p = Parser::new(MAX);
    let mut out = Vec::new();
    let mut at = 0;
    for &n in sizes {
        let chunk = &stream[at..at + n];
        at += n;
        out.extend(p.push(chunk).map_err(|_| ())?);
    }
    Ok(out)
}
