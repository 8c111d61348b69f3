//! A command's captured output: the most recent bytes up to a limit, shown as text.

use std::collections::VecDeque;

/// The most recent output bytes of one command, at most `limit` of them.
#[derive(Debug)]
pub(crate) struct OutputBuffer {
    bytes: VecDeque<u8>,
    limit: usize,
    truncated: bool,
}

impl OutputBuffer {
    /// An empty buffer keeping at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            bytes: VecDeque::new(),
            limit,
            truncated: false,
        }
    }

    /// Appends output, dropping the oldest bytes beyond the limit; the kept part always starts
    /// on a UTF-8 character boundary (so the cut never shows half a character).
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        let cut = if chunk.len() >= self.limit {
            let dropped = !self.bytes.is_empty() || chunk.len() > self.limit;
            self.bytes.clear();
            self.bytes.extend(&chunk[chunk.len() - self.limit..]);
            dropped
        } else {
            self.bytes.extend(chunk);
            let excess = self.bytes.len().saturating_sub(self.limit);
            self.bytes.drain(..excess);
            excess > 0
        };
        if cut {
            self.truncated = true;
            // Continuation bytes (0b10xx_xxxx) at the front belong to a character we cut.
            let mut skipped = 0;
            while skipped < 3 && self.bytes.front().is_some_and(|b| b & 0xC0 == 0x80) {
                self.bytes.pop_front();
                skipped += 1;
            }
        }
    }

    /// True when older output was dropped.
    pub(crate) fn truncated(&self) -> bool {
        self.truncated
    }

    /// The output as text. While the command runs, an incomplete character at the very end is
    /// held back (its remaining bytes are probably on their way); once `finished`, or for bytes
    /// that are not UTF-8 at all, invalid sequences show as U+FFFD.
    pub(crate) fn text(&self, finished: bool) -> String {
        let (front, back) = self.bytes.as_slices();
        let mut all = Vec::with_capacity(front.len() + back.len());
        all.extend_from_slice(front);
        all.extend_from_slice(back);
        if !finished {
            let incomplete_tail = match std::str::from_utf8(&all) {
                Ok(_) => 0,
                Err(err) if err.error_len().is_none() => all.len() - err.valid_up_to(),
                Err(_) => trailing_incomplete_len(&all),
            };
            all.truncate(all.len() - incomplete_tail);
        }
        match String::from_utf8(all) {
            Ok(text) => text,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        }
    }
}

/// Length of an incomplete UTF-8 sequence at the end of `bytes` (0 when the end is complete).
fn trailing_incomplete_len(bytes: &[u8]) -> usize {
    let start = bytes.len().saturating_sub(3);
    for i in (start..bytes.len()).rev() {
        let byte = bytes[i];
        if byte & 0xC0 == 0x80 {
            continue;
        }
        let needed = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        let have = bytes.len() - i;
        return if have < needed { have } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_under_the_limit() {
        let mut buffer = OutputBuffer::new(10);
        buffer.push(b"hello ");
        buffer.push(b"you");
        assert_eq!(buffer.text(true), "hello you");
        assert!(!buffer.truncated());
    }

    #[test]
    fn keeps_the_most_recent_bytes() {
        let mut buffer = OutputBuffer::new(5);
        buffer.push(b"abc");
        buffer.push(b"defg");
        assert_eq!(buffer.text(true), "cdefg");
        assert!(buffer.truncated());
        buffer.push(b"0123456789");
        assert_eq!(buffer.text(true), "56789");
    }

    #[test]
    fn cuts_on_a_character_boundary() {
        let mut buffer = OutputBuffer::new(5);
        buffer.push("ééé".as_bytes()); // 6 bytes: the first é is cut in half, then dropped
        assert_eq!(buffer.text(true), "éé");
        assert!(buffer.truncated());
    }

    #[test]
    fn holds_back_a_half_written_character_while_running() {
        let mut buffer = OutputBuffer::new(100);
        let bytes = "aé".as_bytes();
        buffer.push(&bytes[..2]);
        assert_eq!(buffer.text(false), "a");
        assert_eq!(buffer.text(true), "a\u{FFFD}");
        buffer.push(&bytes[2..]);
        assert_eq!(buffer.text(false), "aé");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut buffer = OutputBuffer::new(100);
        buffer.push(b"a\xFFb\xE2\x82");
        assert_eq!(buffer.text(false), "a\u{FFFD}b");
        assert_eq!(buffer.text(true), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn a_zero_limit_keeps_nothing() {
        let mut buffer = OutputBuffer::new(0);
        buffer.push(b"abc");
        assert_eq!(buffer.text(true), "");
        assert!(buffer.truncated());
        let mut untouched = OutputBuffer::new(0);
        untouched.push(b"");
        assert!(!untouched.truncated());
    }
}
