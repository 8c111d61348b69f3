//! How the split-invariance targets cut one input into reads: from the input's own bytes, so the
//! fuzzer steers the cuts by mutating the input, and seed files stay plain text.

// Each target uses one of the two cuttings; the other is dead code in its binary.
#![allow(dead_code)]

/// `len` bytes cut into pieces whose sizes (1 to 8) cycle through `input`'s bytes; a byte with
/// its high bit set also inserts an empty read before its piece (a reader may return nothing).
pub fn pieces(input: &[u8], len: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    if input.is_empty() {
        return ranges;
    }
    let mut at = 0;
    let mut k = 0;
    while at < len {
        let byte = input[k % input.len()];
        k += 1;
        if byte & 0x80 != 0 {
            ranges.push(at..at);
        }
        let end = (at + usize::from(byte % 8) + 1).min(len);
        ranges.push(at..end);
        at = end;
    }
    ranges
}

/// The same cuts moved down to character boundaries of `text` (a stream of text deltas never
/// splits a character); pieces that become empty stay, as empty deltas.
pub fn text_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for range in self::pieces(text.as_bytes(), text.len()) {
        let mut end = range.end;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let end = end.max(start);
        pieces.push(&text[start..end]);
        start = end;
    }
    pieces.push(&text[start..]);
    pieces
}
