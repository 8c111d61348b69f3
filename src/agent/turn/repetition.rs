//! Degenerate repetition in a model's answer, seen as the answer streams in: small models
//! (Qwen2.5-Coder 0.5B/1.5B on a CPU) repeat a line, a sentence or a tool call until
//! `max_tokens`, minutes of generation nobody reads. Pure bookkeeping, no I/O: the turn loop
//! feeds it the answer and stops the request when it fires (see `specs/turn-loop.md`, "Loops").
//!
//! - [`TextRepetition`]: the end of the text (answer or thoughts) is one block written over and
//!   over. Compared after folding case and runs of whitespace ("near-identical"); numbers are not
//!   folded, since tables and numbered lists differ only in them.
//! - [`call_key`]: a tool call's name and arguments, for "the same call again", within one answer
//!   and across the requests of a turn ([`TurnCalls`]).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// How much of the end of the text is searched, in (folded) characters: a repeated block may be
/// up to a third of it.
const WINDOW: usize = 4096;
/// A repeated block must be written at least this many times, the first included.
const MIN_COPIES: usize = 3;
/// …and the repeated run must be at least this long (folded characters, ~150 tokens): no
/// normal text repeats a block that much (a table's `|---|` row, a few `}` lines, a test's
/// similar lines are far shorter or not exact copies).
const MIN_SPAN: usize = 600;
/// Blocks shorter than this (`0, `, `=`, `} `) must repeat over [`SHORT_SPAN`] characters: a
/// table of zeros or a long rule is legitimate for longer than a sentence is.
const SHORT_UNIT: usize = 16;
/// See [`SHORT_UNIT`].
const SHORT_SPAN: usize = 2000;
/// The end of the text is searched again once this many (folded) characters arrived since the
/// last search: a search costs about `2 × WINDOW` steps, and a server may send one byte per
/// event.
const SEARCH_EVERY: usize = 64;
/// The most characters of the repeated block quoted back to the person and the model.
const QUOTE_CHARS: usize = 80;

/// A repetition found at the end of the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TextLoop {
    /// The repeated block as first written, whitespace collapsed, shortened to
    /// [`QUOTE_CHARS`] characters.
    pub(super) quote: String,
    /// How many times it was written, the first included (as far as the window saw).
    pub(super) copies: usize,
    /// How many bytes of all the text pushed are worth keeping: everything before the
    /// repetition and its first copy, extended to the end of its line or sentence.
    pub(super) keep: usize,
}

/// Watches streamed text for one block written over and over at its end.
#[derive(Debug, Default)]
pub(super) struct TextRepetition {
    /// The folded end of the text.
    folded: Vec<char>,
    /// For each folded character, the byte range (in all the text pushed) it stands for.
    spans: Vec<(usize, usize)>,
    /// The raw text from `spans[0].0` on.
    raw: String,
    /// The absolute byte offset of `raw`'s start.
    raw_base: usize,
    /// Bytes pushed so far.
    pushed: usize,
    /// Folded characters added since the last search.
    unsearched: usize,
}

impl TextRepetition {
    /// Takes the next piece of text; returns the repetition its end now is, if any.
    pub(super) fn push(&mut self, text: &str) -> Option<TextLoop> {
        if text.is_empty() {
            return None;
        }
        let before = self.folded.len();
        for (at, c) in text.char_indices() {
            let start = self.pushed + at;
            let end = start + c.len_utf8();
            if c.is_whitespace() {
                match (self.folded.last(), self.spans.last_mut()) {
                    (Some(' '), Some(span)) => span.1 = end,
                    _ => {
                        self.folded.push(' ');
                        self.spans.push((start, end));
                    }
                }
            } else {
                for lower in c.to_lowercase() {
                    self.folded.push(lower);
                    self.spans.push((start, end));
                }
            }
        }
        self.unsearched += self.folded.len() - before;
        self.raw.push_str(text);
        self.pushed += text.len();
        if self.folded.len() > 2 * WINDOW {
            let drop = self.folded.len() - WINDOW;
            self.folded.drain(..drop);
            self.spans.drain(..drop);
            let base = self.spans[0].0;
            self.raw.drain(..base - self.raw_base);
            self.raw_base = base;
        }
        if self.unsearched < SEARCH_EVERY {
            return None;
        }
        self.unsearched = 0;
        self.find()
    }

    fn find(&self) -> Option<TextLoop> {
        let n = self.folded.len().min(WINDOW);
        let tail = &self.folded[self.folded.len() - n..];
        let reversed: Vec<char> = tail.iter().rev().copied().collect();
        let z = z_function(&reversed);
        for (period, common) in z.iter().enumerate().take(n / MIN_COPIES + 1).skip(1) {
            let span = (common + period).min(n);
            if span < MIN_SPAN || span / period < MIN_COPIES {
                continue;
            }
            // The shortest block whose run is long enough: its own length decides.
            if period < SHORT_UNIT && span < SHORT_SPAN {
                return None;
            }
            let offset = self.folded.len() - n;
            let first = offset + n - span;
            return Some(self.text_loop(first, period, span / period));
        }
        None
    }

    /// The loop whose first copy is `folded[first..first + period]`.
    fn text_loop(&self, first: usize, period: usize, copies: usize) -> TextLoop {
        let mut keep = self.spans[first + period - 1].1;
        // A block found from the end may start mid-line ("…sorry.\nI am sorry"): keep the rest
        // of the line or sentence the first copy ends in, from the second copy.
        let second_end = self.spans[(first + 2 * period - 1).min(self.spans.len() - 1)].1;
        let next = &self.raw[keep - self.raw_base..second_end - self.raw_base];
        let ends_clean = self.raw[..keep - self.raw_base]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace);
        let mut chars = next.char_indices().peekable();
        while let Some((at, c)) = chars.next().filter(|_| !ends_clean) {
            let ends_sentence = matches!(c, '.' | '!' | '?')
                && chars.peek().is_none_or(|(_, next)| next.is_whitespace());
            if c == '\n' || ends_sentence {
                keep += at + c.len_utf8();
                if ends_sentence && chars.peek().is_some_and(|(_, next)| *next == '\n') {
                    keep += 1;
                }
                break;
            }
        }
        // Quoted: the copy that ends where the kept text ends ("I am sorry.", not ". I am sorry").
        let mut last = first + period - 1;
        while last + 1 < self.spans.len() && self.spans[last + 1].1 <= keep {
            last += 1;
        }
        let start = self.spans[last + 1 - period].0;
        let block = &self.raw[start - self.raw_base..keep - self.raw_base];
        TextLoop {
            quote: quote(block),
            copies,
            keep,
        }
    }
}

/// `text` with runs of whitespace as one space, trimmed, at most [`QUOTE_CHARS`] characters.
pub(super) fn quote(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= QUOTE_CHARS {
        return collapsed;
    }
    let mut short: String = collapsed.chars().take(QUOTE_CHARS - 1).collect();
    short.push('…');
    short
}

/// `z[i]` = the length of the longest common prefix of `s` and `s[i..]` (`z[0]` = `s.len()`).
fn z_function(s: &[char]) -> Vec<usize> {
    let n = s.len();
    let mut z = vec![0; n + 1];
    if n == 0 {
        return z;
    }
    z[0] = n;
    let (mut left, mut right) = (0, 0);
    for i in 1..n {
        if i < right {
            z[i] = (right - i).min(z[i - left]);
        }
        while i + z[i] < n && s[z[i]] == s[i + z[i]] {
            z[i] += 1;
        }
        if i + z[i] > right {
            left = i;
            right = i + z[i];
        }
    }
    z
}

/// What makes two tool calls "the same": the name and the arguments as JSON values (key order
/// and spacing ignored), or the arguments' text when it is not JSON.
pub(super) fn call_key(name: &str, arguments: &str) -> String {
    let arguments = match serde_json::from_str::<Value>(arguments) {
        Ok(value) => canonical(&value),
        Err(_) => arguments.trim().to_owned(),
    };
    format!("{name}\u{0}{arguments}")
}

/// `value` as JSON text with object keys sorted, at every depth.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(key, value)| format!("{}:{}", Value::String(key.clone()), canonical(value)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// The calls of one answer so far, to notice the same call written again.
#[derive(Debug, Default)]
pub(super) struct AnswerCalls(HashSet<String>);

impl AnswerCalls {
    /// Records a call; true when the answer already made the same one.
    pub(super) fn is_repeat(&mut self, name: &str, arguments: &str) -> bool {
        !self.0.insert(call_key(name, arguments))
    }
}

/// Repeated calls a turn answers from earlier results before the turn is ended: the one that
/// reaches this number is still answered (the history stays whole), then the turn ends.
pub(crate) const MAX_REPEATED_CALLS: usize = 3;

/// The results of a turn's read-only calls, so that the same call made again in a later request
/// gets its earlier result back instead of running again, and a model that keeps repeating
/// itself is stopped.
#[derive(Debug, Default)]
pub(super) struct TurnCalls {
    results: HashMap<String, (String, bool)>,
    repeats: usize,
}

impl TurnCalls {
    /// The earlier result of this call (its text, and whether the call was usable), counting a
    /// repeat; `None` if it did not run yet in this turn (or ran before something changed).
    pub(super) fn recall(&mut self, name: &str, arguments: &str) -> Option<(String, bool)> {
        let found = self.results.get(&call_key(name, arguments)).cloned();
        if found.is_some() {
            self.repeats += 1;
        }
        found
    }

    /// Remembers the result of a read-only call.
    pub(super) fn remember(&mut self, name: &str, arguments: &str, text: &str, usable: bool) {
        self.results
            .insert(call_key(name, arguments), (text.to_owned(), usable));
    }

    /// Forgets every result: a call that may change files or run something ran, so reading
    /// again may give something new.
    pub(super) fn forget(&mut self) {
        self.results.clear();
    }

    /// How many calls of this turn were answered from an earlier result.
    pub(super) fn repeats(&self) -> usize {
        self.repeats
    }

    /// True once the turn should end: [`MAX_REPEATED_CALLS`] repeats.
    pub(super) fn exhausted(&self) -> bool {
        self.repeats >= MAX_REPEATED_CALLS
    }
}

#[cfg(test)]
#[path = "repetition_tests.rs"]
mod tests;
