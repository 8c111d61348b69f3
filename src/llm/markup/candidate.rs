//! Tool calls written as bare JSON in the answer's text, with no tags around them: where one
//! may start (`{`, `[`, or a ```` ``` ```` fence), whether it still may be a call, and where it
//! ends, read byte by byte however the text was cut.
//!
//! Only what may still become a call is held: a `{` is let go as soon as what follows cannot
//! start a call's object (its first key must be one a call starts with, such as `name`,
//! `function` or `tool`), a fence as soon as its first line is not followed by `{` or `[`, and
//! any candidate once it passes [`MAX_CANDIDATE`] bytes.

use super::body::JsonEnd;

/// The most bytes held as a possible call; past this the candidate is released as text.
pub(crate) const MAX_CANDIDATE: usize = 64 * 1024;

/// The keys a call's object starts with (compared ignoring case).
const FIRST_KEYS: [&str; 12] = [
    "name",
    "function",
    "tool",
    "tool_name",
    "arguments",
    "parameters",
    "args",
    "type",
    "id",
    "input",
    "tool_input",
    "function_call",
];

/// The longest first key looked at.
const MAX_KEY: usize = 16;

/// The longest info string of a fence (` ```json `).
const MAX_INFO: usize = 24;

/// What the scanner knows after the bytes seen so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CandidateEnd {
    /// It may still be a call.
    More,
    /// It cannot be one: the first `text_len` bytes are text; what follows is scanned anew.
    NotACall {
        /// How many bytes to let go as text.
        text_len: usize,
    },
    /// The JSON is complete: it is `text[json_start..json_end]`, and the candidate (its fence
    /// included) ends at `consumed_end`.
    End {
        /// Where the JSON starts.
        json_start: usize,
        /// Where it stops.
        json_end: usize,
        /// Where the text after the candidate starts.
        consumed_end: usize,
    },
}

#[derive(Clone, Debug)]
enum Phase {
    /// After ```` ``` ````: the info string, up to the end of the line.
    FenceInfo { len: usize },
    /// After the fence's first line, before the JSON.
    FenceLead,
    /// After `[`, before the first object.
    ArrayLead,
    /// After `{`, before the first key.
    ObjectLead,
    /// The first key; its quote, if any.
    Key { quote: Option<u8>, start: usize },
    /// After an unquoted key, or a quoted one, before its `:`.
    AfterKey { key: (usize, usize) },
    /// Inside the JSON, after a first key a call can start with.
    Body,
    /// After a JSON value inside a fence: more values, or the closing fence.
    AfterJson { backticks: usize },
}

/// Follows one candidate, from its first byte (`{`, `[`, or the fence's first backtick).
#[derive(Clone, Debug)]
pub(crate) struct CandidateScanner {
    fenced: bool,
    phase: Phase,
    json: JsonEnd,
    scanned: usize,
    json_start: usize,
    json_end: usize,
}

impl CandidateScanner {
    /// A scanner for a candidate that starts with `{` or `[`, or (`fenced`) with ```` ``` ````.
    pub(crate) fn new(fenced: bool) -> Self {
        Self {
            fenced,
            phase: if fenced {
                Phase::FenceInfo { len: 0 }
            } else {
                Phase::ObjectLead
            },
            json: JsonEnd::default(),
            scanned: if fenced { 3 } else { 0 },
            json_start: 0,
            json_end: 0,
        }
    }

    /// What the candidate is: `text` starts where it does, and only ever grows.
    pub(crate) fn scan(&mut self, text: &str) -> CandidateEnd {
        let bytes = text.as_bytes();
        while self.scanned < bytes.len() {
            let index = self.scanned;
            let byte = bytes[index];
            self.scanned += 1;
            if index >= MAX_CANDIDATE {
                let mut text_len = MAX_CANDIDATE;
                while !text.is_char_boundary(text_len) {
                    text_len -= 1;
                }
                return CandidateEnd::NotACall { text_len };
            }
            let not_a_call = CandidateEnd::NotACall {
                text_len: if self.fenced { self.json_start + 1 } else { 1 },
            };
            match self.phase {
                Phase::FenceInfo { len } => {
                    if byte == b'\n' {
                        self.phase = Phase::FenceLead;
                    } else if len < MAX_INFO
                        && (byte.is_ascii_alphanumeric()
                            || matches!(byte, b'_' | b'-' | b'+' | b' '))
                    {
                        self.phase = Phase::FenceInfo { len: len + 1 };
                    } else {
                        return CandidateEnd::NotACall { text_len: 3 };
                    }
                }
                Phase::FenceLead => {
                    if byte.is_ascii_whitespace() {
                        continue;
                    }
                    if byte != b'{' && byte != b'[' {
                        return CandidateEnd::NotACall { text_len: 3 };
                    }
                    self.json_start = index;
                    self.open(byte);
                }
                Phase::ArrayLead | Phase::ObjectLead if index == self.json_start => {
                    // The opening bracket itself (unfenced candidates start on it).
                    self.open(byte);
                }
                Phase::ArrayLead => {
                    self.json.feed(byte);
                    if byte.is_ascii_whitespace() {
                        continue;
                    }
                    if byte != b'{' {
                        return not_a_call;
                    }
                    self.phase = Phase::ObjectLead;
                }
                Phase::ObjectLead => {
                    self.json.feed(byte);
                    if byte.is_ascii_whitespace() {
                        continue;
                    }
                    self.phase = match byte {
                        b'"' | b'\'' => Phase::Key {
                            quote: Some(byte),
                            start: index + 1,
                        },
                        byte if byte.is_ascii_alphabetic() || byte == b'_' => Phase::Key {
                            quote: None,
                            start: index,
                        },
                        _ => return not_a_call,
                    };
                }
                Phase::Key { quote, start } => {
                    let ended = match quote {
                        Some(quote) => byte == quote,
                        None => !(byte.is_ascii_alphanumeric() || byte == b'_'),
                    };
                    if ended {
                        let key = (start, index);
                        self.phase = Phase::AfterKey { key };
                        if quote.is_none() {
                            // The byte after an unquoted key is read as what follows it.
                            self.scanned = index;
                            continue;
                        }
                    } else if index - start >= MAX_KEY {
                        return not_a_call;
                    }
                    self.json.feed(byte);
                }
                Phase::AfterKey { key } => {
                    self.json.feed(byte);
                    if byte.is_ascii_whitespace() {
                        continue;
                    }
                    let key = &text[key.0..key.1];
                    if byte != b':' || !FIRST_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                        return not_a_call;
                    }
                    self.phase = Phase::Body;
                }
                Phase::Body => {
                    if self.json.feed(byte) {
                        self.json_end = index + 1;
                        if !self.fenced {
                            return self.end(index + 1);
                        }
                        self.phase = Phase::AfterJson { backticks: 0 };
                    }
                }
                Phase::AfterJson { backticks } => match byte {
                    b'`' if backticks == 2 => return self.end(index + 1),
                    b'`' => {
                        self.phase = Phase::AfterJson {
                            backticks: backticks + 1,
                        }
                    }
                    _ if backticks > 0 => return self.end(self.json_end),
                    b'{' | b'[' => {
                        // Another value in the same fence.
                        self.json = JsonEnd::default();
                        self.json.feed(byte);
                        self.phase = Phase::Body;
                    }
                    byte if byte.is_ascii_whitespace() => {}
                    _ => return self.end(self.json_end),
                },
            }
        }
        CandidateEnd::More
    }

    /// Where the candidate ends when the text ends first: an unterminated JSON value is read as
    /// far as it goes (a fence's closing line cut off).
    pub(crate) fn at_end(&self, text: &str) -> CandidateEnd {
        let (json_end, consumed_end) = match self.phase {
            Phase::AfterJson { .. } => (self.json_end, text.len()),
            _ => {
                let json_end = if self.fenced {
                    text[self.json_start..]
                        .find("\n```")
                        .map_or(text.len(), |at| self.json_start + at)
                } else {
                    text.len()
                };
                (json_end, text.len())
            }
        };
        CandidateEnd::End {
            json_start: self.json_start,
            json_end,
            consumed_end,
        }
    }

    fn open(&mut self, byte: u8) {
        self.json.feed(byte);
        self.phase = if byte == b'[' {
            Phase::ArrayLead
        } else {
            Phase::ObjectLead
        };
    }

    fn end(&self, consumed_end: usize) -> CandidateEnd {
        CandidateEnd::End {
            json_start: self.json_start,
            json_end: self.json_end,
            consumed_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end found when `text` comes in pieces of `size` bytes, and at the end of the text.
    fn scan_in_pieces(fenced: bool, text: &str, size: usize) -> CandidateEnd {
        let mut scanner = CandidateScanner::new(fenced);
        let mut end = 0;
        while end < text.len() {
            end = (end + size).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            match scanner.scan(&text[..end]) {
                CandidateEnd::More => {}
                found => return found,
            }
        }
        scanner.at_end(text)
    }

    fn ends(fenced: bool, text: &str) -> CandidateEnd {
        let whole = scan_in_pieces(fenced, text, text.len().max(1));
        for size in 1..text.len().max(2) {
            assert_eq!(
                scan_in_pieces(fenced, text, size),
                whole,
                "{text:?} by {size}"
            );
        }
        whole
    }

    #[test]
    fn a_bare_call_ends_with_its_json() {
        let text = r#"{"name": "grep", "arguments": {"pattern": "}"}} and then"#;
        let json_end = text.find(" and").unwrap();
        assert_eq!(
            ends(false, text),
            CandidateEnd::End {
                json_start: 0,
                json_end,
                consumed_end: json_end
            }
        );
        let text = "[ {name: 'grep', 'arguments': {}}]";
        assert_eq!(
            ends(false, text),
            CandidateEnd::End {
                json_start: 0,
                json_end: text.len(),
                consumed_end: text.len()
            }
        );
    }

    #[test]
    fn a_fenced_call_ends_with_its_fence() {
        let text = "```json\n{\"name\": \"grep\", \"arguments\": {}}\n{\"name\": \"list_dir\"}\n```\nDone.";
        assert_eq!(
            ends(true, text),
            CandidateEnd::End {
                json_start: 8,
                json_end: text.find("\n```").unwrap(),
                consumed_end: text.find("\nDone").unwrap()
            }
        );
        // Cut off before its closing fence: as far as it goes.
        let text = "```\n{\"name\": \"grep\", \"arguments\": {}";
        assert_eq!(
            ends(true, text),
            CandidateEnd::End {
                json_start: 4,
                json_end: text.len(),
                consumed_end: text.len()
            }
        );
    }

    #[test]
    fn what_cannot_be_a_call_is_let_go_at_once() {
        for (fenced, text, text_len) in [
            (false, "{} more", 1),
            (false, "{x} more", 1),
            (false, "{\"dependencies\": {\"name\": 1}}", 1),
            (false, "[link](url)", 1),
            (false, "[1, 2]", 1),
            (true, "```rust\nfn main() {}\n```", 3),
            (true, "```\n\nHello", 3),
            (true, "```json\n{\"version\": 1}\n```", 9),
            (true, "```a,b\n", 3),
        ] {
            assert_eq!(
                ends(fenced, text),
                CandidateEnd::NotACall { text_len },
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_candidate_too_long_is_text() {
        let text = format!(
            "{{\"name\": \"write_file\", \"arguments\": {{\"content\": \"{}\"}}}}",
            "x".repeat(MAX_CANDIDATE)
        );
        let mut scanner = CandidateScanner::new(false);
        assert_eq!(
            scanner.scan(&text),
            CandidateEnd::NotACall {
                text_len: MAX_CANDIDATE
            }
        );
    }
}
