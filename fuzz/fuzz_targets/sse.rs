//! Fuzzes the SSE decoder: arbitrary bytes, cut into reads at arbitrary points, must never panic,
//! and must decode to the same events however they were cut (whole, byte by byte, or in pieces
//! chosen by the input itself). A small limit on one line or event makes the too-long path
//! reachable: whether the limit is hit must not depend on the cuts either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use punie::llm::sse::{SseDecoder, SseEvent};

mod split;

/// Small enough that fuzzed inputs reach it, large enough for ordinary events.
const LIMIT: usize = 4096;

/// The events, or `None` when a line or event passed [`LIMIT`].
fn decode<'a>(reads: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<SseEvent>> {
    let mut decoder = SseDecoder::with_limit(LIMIT);
    let mut events = Vec::new();
    for read in reads {
        events.extend(decoder.feed(read).ok()?);
    }
    events.extend(decoder.finish().ok()?);
    Some(events)
}

fuzz_target!(|data: &[u8]| {
    let whole = decode([data]);
    for event in whole.iter().flatten() {
        // Line ends separate fields; none may survive inside one.
        assert!(!event.data.contains('\r'), "CR inside data: {event:?}");
        let name = event.event.as_deref().unwrap_or("");
        assert!(
            !name.contains(['\r', '\n']),
            "line end inside the event type: {event:?}"
        );
    }
    let bytewise = decode(data.chunks(1));
    assert_eq!(bytewise, whole, "byte-by-byte reads decode differently");
    let pieces = split::pieces(data, data.len());
    let cut = decode(pieces.iter().map(|range| &data[range.clone()]));
    assert_eq!(cut, whole, "reads cut at {pieces:?} decode differently");
});
