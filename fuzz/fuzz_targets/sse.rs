//! Fuzzes the SSE decoder: arbitrary bytes, cut into reads at arbitrary points, must never panic,
//! and must decode to the same events however they were cut (whole, byte by byte, or in pieces
//! chosen by the input itself).

#![no_main]

use libfuzzer_sys::fuzz_target;
use punie::llm::sse::{SseDecoder, SseEvent};

mod split;

fn decode<'a>(reads: impl IntoIterator<Item = &'a [u8]>) -> Vec<SseEvent> {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    for read in reads {
        events.extend(decoder.feed(read));
    }
    events.extend(decoder.finish());
    events
}

fuzz_target!(|data: &[u8]| {
    let whole = decode([data]);
    for event in &whole {
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
