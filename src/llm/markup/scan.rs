//! The content scanner: the answer's text in, chunk by chunk, and out as pieces of text,
//! thought, and tool calls, exactly the same however the text was cut.
//!
//! Text streams out as soon as it is known to be text: only the shortest suffix that could be
//! the start of a tag is held back until the next chunk tells. The one exception is a model
//! known (or suspected, from its name) to start its answers inside a thought whose `<think>` the
//! chat template put in the prompt: its leading text is held until a `</think>` (a thought), a
//! `<think>` or a tool call (an answer), or the end (an answer) says what it was.
//!
//! Tags are recognised where a model writes them, and taken as text elsewhere:
//! - `<think>` opens a thought only before any text of the answer;
//! - a `</think>` with no `<think>` before it closes a thought the prompt opened;
//! - tool-call start tags count anywhere in the answer when tools were offered, but a start tag
//!   not followed by what a call can start with (`{`, `<function=`, a name) is text;
//! - nothing inside a thought or a tool call is looked at but its own end.

use std::sync::Arc;

use super::body::{BodyEnd, BodyScanner, CallKind};
use super::candidate::{CandidateEnd, CandidateScanner};
use super::parse::{TextCall, parse_body};
use super::{lenient, shapes};
use crate::llm::ToolSpec;

/// One piece of the scanned content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Answer text.
    Text(String),
    /// Reasoning.
    Thought(String),
    /// Tool calls read from one piece of markup, and the markup itself.
    Calls {
        /// The calls.
        calls: Vec<TextCall>,
        /// The markup exactly as written, tags included.
        raw: String,
    },
}

/// What this answer showed about how the model starts its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leading {
    /// Nothing conclusive.
    Unknown,
    /// Inside a thought opened by the prompt: a `</think>` came before any `<think>`.
    Thought,
    /// With the answer (or with an explicit `<think>`).
    Answer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    ThinkOpen,
    ThinkClose,
    Call(CallKind),
    /// Where a call written as bare JSON may start: `{`, `[`, or a fence (`true`).
    Candidate(&'static str, bool),
}

/// The starts of bare JSON calls, looked for after the tags (a tag wins at the same place).
const CANDIDATES: [Tag; 3] = [
    Tag::Candidate("{", false),
    Tag::Candidate("[", false),
    Tag::Candidate("```", true),
];

impl Tag {
    fn text(self) -> &'static str {
        match self {
            Tag::ThinkOpen => "<think>",
            Tag::ThinkClose => "</think>",
            Tag::Call(kind) => kind.start_tag(),
            Tag::Candidate(text, _) => text,
        }
    }
}

/// The longest tag looked for outside calls (`<tool_response>`).
const MAX_TAG: usize = 15;

/// How much leading text is held, at most, waiting to learn whether it is a thought. Past this
/// it is taken as text (it is a memory bound: a model whose thoughts run longer than this is
/// better served by a server that separates reasoning).
const UNDECIDED_LIMIT: usize = 128 * 1024;

#[derive(Debug)]
enum Mode {
    /// Leading text that may be a thought opened by the prompt.
    Undecided,
    Text,
    Thought,
    Call {
        kind: CallKind,
        body: BodyScanner,
    },
    /// JSON that may be a call written with no tags.
    Candidate {
        fenced: bool,
        scanner: CandidateScanner,
    },
}

/// Splits content text into [`Piece`]s.
#[derive(Debug)]
pub(crate) struct Scanner {
    mode: Mode,
    /// Text not handed out yet: the undecided lead, a held suffix, a thought's held suffix, or
    /// the body of the call being read.
    buf: String,
    /// Where the next search for a tag in the undecided lead starts.
    scan_from: usize,
    /// The tools offered, when tool calls written as text are looked for.
    tools: Option<Arc<[ToolSpec]>>,
    /// White space is dropped at the start of the answer, of a thought, and after `</think>`.
    strip_leading: bool,
    /// Some answer text that is not white space went out.
    seen_text: bool,
    /// A `<think>` or `</think>` was met (so a later `</think>` is no longer a prompt-opened
    /// thought's end).
    think_seen: bool,
    leading: Leading,
    out: Vec<Piece>,
    /// The shape of each call in `out`'s [`Piece::Calls`], in order (for the perf report).
    shapes: Vec<&'static str>,
}

impl Scanner {
    /// A scanner for one answer. `hold_leading`: the model may start inside a thought;
    /// `tools`: the tools offered, to read tool calls written as text (`None`: do not).
    pub(crate) fn new(hold_leading: bool, tools: Option<Arc<[ToolSpec]>>) -> Self {
        Self {
            mode: if hold_leading {
                Mode::Undecided
            } else {
                Mode::Text
            },
            buf: String::new(),
            scan_from: 0,
            tools,
            strip_leading: true,
            seen_text: false,
            think_seen: false,
            leading: Leading::Unknown,
            out: Vec::new(),
            shapes: Vec::new(),
        }
    }

    /// Takes the next chunk of content.
    pub(crate) fn push(&mut self, text: &str) {
        self.buf.push_str(text);
        self.run(false);
    }

    /// The content is over; `complete`: the answer ended normally (not cut by a length limit).
    pub(crate) fn finish(&mut self, complete: bool) {
        let undecided = matches!(self.mode, Mode::Undecided);
        self.run(true);
        if undecided && self.leading == Leading::Unknown && complete {
            self.leading = Leading::Answer;
        }
    }

    /// The server sent reasoning separately: content that follows is the answer.
    pub(crate) fn structured_thought(&mut self) {
        if matches!(self.mode, Mode::Undecided) && self.buf.trim().is_empty() {
            self.mode = Mode::Text;
            self.run(false);
        }
    }

    /// The server sent structured tool calls: stop reading calls from the text, and give back
    /// as text the one being read.
    pub(crate) fn stop_calls(&mut self) {
        self.tools = None;
        if let Mode::Call { kind, .. } = self.mode {
            self.mode = Mode::Text;
            self.emit_text(kind.start_tag());
        }
        if let Mode::Candidate { .. } = self.mode {
            self.mode = Mode::Text;
        }
        self.run(false);
    }

    /// The pieces scanned since the last call.
    pub(crate) fn take(&mut self) -> Vec<Piece> {
        std::mem::take(&mut self.out)
    }

    /// The shapes of the calls handed out by [`take`](Self::take) so far and not taken yet,
    /// one per call, in order.
    pub(crate) fn take_shapes(&mut self) -> Vec<&'static str> {
        std::mem::take(&mut self.shapes)
    }

    /// What this answer showed about how the model starts its answers.
    pub(crate) fn leading(&self) -> Leading {
        self.leading
    }

    fn call_tags(&self) -> impl Iterator<Item = Tag> + use<> {
        let kinds: &[CallKind] = if self.tools.is_some() {
            &CallKind::ALL
        } else {
            &[]
        };
        kinds.iter().copied().map(Tag::Call)
    }

    fn run(&mut self, at_end: bool) {
        loop {
            match &mut self.mode {
                Mode::Undecided => {
                    let mut tags = vec![Tag::ThinkClose, Tag::ThinkOpen];
                    tags.extend(self.call_tags());
                    let found = find_tag(&self.buf, self.scan_from, &tags)
                        .filter(|&(at, _)| at < UNDECIDED_LIMIT);
                    match found {
                        Some((at, Tag::ThinkClose)) => {
                            self.leading = Leading::Thought;
                            self.think_seen = true;
                            let thought: String = self.buf.drain(..at).collect();
                            self.buf.drain(..Tag::ThinkClose.text().len());
                            self.emit_thought(&thought);
                            self.mode = Mode::Text;
                            self.strip_leading = true;
                        }
                        Some((at, Tag::ThinkOpen)) if self.buf[..at].trim().is_empty() => {
                            self.leading = Leading::Answer;
                            self.think_seen = true;
                            self.buf.drain(..at + Tag::ThinkOpen.text().len());
                            self.mode = Mode::Thought;
                            self.strip_leading = true;
                        }
                        Some(_) => {
                            // Text before `<think>`, or a tool call: this is the answer.
                            self.leading = Leading::Answer;
                            self.mode = Mode::Text;
                        }
                        None if at_end || self.buf.len() >= UNDECIDED_LIMIT + MAX_TAG => {
                            self.mode = Mode::Text;
                        }
                        None => {
                            let mut from = self.buf.len().saturating_sub(MAX_TAG - 1);
                            while !self.buf.is_char_boundary(from) {
                                from -= 1;
                            }
                            self.scan_from = from;
                            return;
                        }
                    }
                }
                Mode::Text => {
                    let mut tags: Vec<Tag> = self.call_tags().collect();
                    if self.tools.is_some() {
                        tags.extend(CANDIDATES);
                    }
                    // Looked for also where it is text, because meeting it matters (see below).
                    if !self.seen_text || !self.think_seen {
                        tags.push(Tag::ThinkOpen);
                    }
                    if !self.think_seen {
                        tags.push(Tag::ThinkClose);
                    }
                    let Some((at, tag)) = find_tag(&self.buf, 0, &tags) else {
                        let hold = if at_end {
                            0
                        } else {
                            held_suffix(&self.buf, &tags)
                        };
                        let text: String = self.buf.drain(..self.buf.len() - hold).collect();
                        self.emit_text(&text);
                        return;
                    };
                    if let Tag::Candidate(..) = tag
                        && !at_end
                        && self.could_be_a_tag(at)
                    {
                        // `[TOOL_` may still become `[TOOL_CALLS]`: wait to know.
                        let before: String = self.buf.drain(..at).collect();
                        self.emit_text(&before);
                        return;
                    }
                    let before: String = self.buf.drain(..at).collect();
                    self.emit_text(&before);
                    if let Tag::Candidate(_, fenced) = tag {
                        self.mode = Mode::Candidate {
                            fenced,
                            scanner: CandidateScanner::new(fenced),
                        };
                        continue;
                    }
                    self.buf.drain(..tag.text().len());
                    match tag {
                        Tag::ThinkOpen if !self.seen_text => {
                            self.think_seen = true;
                            self.mode = Mode::Thought;
                            self.strip_leading = true;
                        }
                        Tag::ThinkOpen => {
                            self.think_seen = true;
                            self.emit_text(tag.text());
                        }
                        Tag::ThinkClose => {
                            // The end of a thought the prompt opened, whose text already went
                            // out as answer text: too late to take it back, but the tag goes,
                            // and the next answers of this model will be held.
                            self.think_seen = true;
                            self.leading = Leading::Thought;
                            self.strip_leading = true;
                        }
                        Tag::Call(kind) => {
                            self.mode = Mode::Call {
                                kind,
                                body: BodyScanner::new(kind),
                            };
                        }
                        Tag::Candidate(..) => unreachable!("candidates start above"),
                    }
                }
                Mode::Thought => {
                    let close = Tag::ThinkClose.text();
                    match self.buf.find(close) {
                        Some(at) => {
                            let thought: String = self.buf.drain(..at).collect();
                            self.buf.drain(..close.len());
                            self.emit_thought(&thought);
                            self.mode = Mode::Text;
                            self.strip_leading = true;
                        }
                        None => {
                            let hold = if at_end {
                                0
                            } else {
                                held_suffix(&self.buf, &[Tag::ThinkClose])
                            };
                            let thought: String = self.buf.drain(..self.buf.len() - hold).collect();
                            self.emit_thought(&thought);
                            return;
                        }
                    }
                }
                Mode::Candidate { fenced, scanner } => {
                    let fenced = *fenced;
                    let end = match scanner.scan(&self.buf) {
                        CandidateEnd::More if !at_end => return,
                        CandidateEnd::More => scanner.at_end(&self.buf),
                        other => other,
                    };
                    self.end_candidate(fenced, end);
                }
                Mode::Call { kind, body } => {
                    let kind = *kind;
                    match body.scan(&self.buf) {
                        BodyEnd::More if !at_end => return,
                        BodyEnd::More => {
                            // Unterminated: the first end tag, if any, else everything.
                            let (content_end, consumed_end) = match kind
                                .end_tag()
                                .and_then(|tag| self.buf.find(tag).map(|at| (at, at + tag.len())))
                            {
                                Some(ends) => ends,
                                None => (self.buf.len(), self.buf.len()),
                            };
                            self.end_call(kind, content_end, consumed_end);
                        }
                        BodyEnd::NotACall => {
                            self.mode = Mode::Text;
                            self.emit_text(kind.start_tag());
                        }
                        BodyEnd::End {
                            content_end,
                            consumed_end,
                        } => self.end_call(kind, content_end, consumed_end),
                    }
                }
            }
        }
    }

    /// Whether the text held from `at` is the start of a tag (not yet whole).
    fn could_be_a_tag(&self, at: usize) -> bool {
        let rest = &self.buf[at..];
        self.call_tags()
            .any(|tag| tag.text().len() > rest.len() && tag.text().starts_with(rest))
    }

    fn end_candidate(&mut self, fenced: bool, end: CandidateEnd) {
        let CandidateEnd::End {
            json_start,
            json_end,
            consumed_end,
        } = end
        else {
            if let CandidateEnd::NotACall { text_len } = end {
                let text: String = self.buf.drain(..text_len).collect();
                self.mode = Mode::Text;
                self.emit_text(&text);
            }
            return;
        };
        let tools = self.tools.clone().unwrap_or_else(|| Arc::from(Vec::new()));
        let calls = lenient::all_values(&self.buf[json_start..json_end])
            .map(|values| shapes::calls_in(&values, &tools))
            .unwrap_or_default();
        let raw: String = self.buf.drain(..consumed_end).collect();
        self.mode = Mode::Text;
        if calls.is_empty() {
            // JSON, but no call: an answer, shown as it was written.
            self.emit_text(&raw);
            return;
        }
        let shape = if fenced { "fenced_json" } else { "bare_json" };
        self.log_calls(shape, &calls);
        self.out.push(Piece::Calls { calls, raw });
        // The white space around a call written without tags is no answer.
        self.strip_leading = true;
    }

    fn log_calls(&mut self, shape: &'static str, calls: &[TextCall]) {
        for call in calls {
            self.shapes.push(shape);
            let offered = self
                .tools
                .as_ref()
                .is_some_and(|tools| tools.iter().any(|tool| tool.name == call.name));
            tracing::info!(shape, tool = %call.name, offered, "tool call read from the answer's text");
        }
    }

    fn end_call(&mut self, kind: CallKind, content_end: usize, consumed_end: usize) {
        let tools = self.tools.clone().unwrap_or_else(|| Arc::from(Vec::new()));
        let calls = parse_body(kind, &self.buf[..content_end], &tools);
        let raw = format!("{}{}", kind.start_tag(), &self.buf[..consumed_end]);
        self.buf.drain(..consumed_end);
        self.mode = Mode::Text;
        if calls.is_empty() {
            // Names no tool: it was text after all.
            self.emit_text(&raw);
        } else {
            self.log_calls(kind.shape(), &calls);
            self.out.push(Piece::Calls { calls, raw });
        }
    }

    fn emit_text(&mut self, text: &str) {
        let Some(text) = self.stripped(text) else {
            return;
        };
        if !text.trim().is_empty() {
            self.seen_text = true;
        }
        match self.out.last_mut() {
            Some(Piece::Text(last)) => last.push_str(&text),
            _ => self.out.push(Piece::Text(text)),
        }
    }

    fn emit_thought(&mut self, text: &str) {
        let Some(text) = self.stripped(text) else {
            return;
        };
        match self.out.last_mut() {
            Some(Piece::Thought(last)) => last.push_str(&text),
            _ => self.out.push(Piece::Thought(text)),
        }
    }

    /// `text` without the white space to strip; `None` when nothing is left.
    fn stripped(&mut self, text: &str) -> Option<String> {
        let text = if self.strip_leading {
            let trimmed = text.trim_start();
            if !trimmed.is_empty() {
                self.strip_leading = false;
            }
            trimmed
        } else {
            text
        };
        (!text.is_empty()).then(|| text.to_owned())
    }
}

/// The earliest of `tags` in `text` at or after byte `from`.
fn find_tag(text: &str, from: usize, tags: &[Tag]) -> Option<(usize, Tag)> {
    tags.iter()
        .filter_map(|&tag| text[from..].find(tag.text()).map(|at| (from + at, tag)))
        .min_by_key(|&(at, _)| at)
}

/// The length of the longest suffix of `text` that could be the start of one of `tags`.
fn held_suffix(text: &str, tags: &[Tag]) -> usize {
    tags.iter()
        .filter_map(|tag| {
            let tag = tag.text();
            (1..tag.len().min(text.len() + 1))
                .rev()
                .find(|&len| text.ends_with(&tag[..len]))
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tools() -> Option<Arc<[ToolSpec]>> {
        Some(Arc::from(vec![ToolSpec {
            name: "read_file".into(),
            description: "Read a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }]))
    }

    /// The pieces of `chunks`, with adjacent pieces of the same kind joined.
    fn scan(hold: bool, tools: Option<Arc<[ToolSpec]>>, chunks: &[&str]) -> Vec<Piece> {
        let mut scanner = Scanner::new(hold, tools);
        let mut pieces = Vec::new();
        for chunk in chunks {
            scanner.push(chunk);
            pieces.extend(scanner.take());
        }
        scanner.finish(true);
        pieces.extend(scanner.take());
        join(pieces)
    }

    fn join(pieces: Vec<Piece>) -> Vec<Piece> {
        let mut joined: Vec<Piece> = Vec::new();
        for piece in pieces {
            match (joined.last_mut(), piece) {
                (Some(Piece::Text(last)), Piece::Text(more)) => last.push_str(&more),
                (Some(Piece::Thought(last)), Piece::Thought(more)) => last.push_str(&more),
                (_, piece) => joined.push(piece),
            }
        }
        joined
    }

    /// Checks that every two- and three-way split of `text` scans like the whole, and returns
    /// that.
    fn scan_all_splits(hold: bool, tools: Option<Arc<[ToolSpec]>>, text: &str) -> Vec<Piece> {
        let whole = scan(hold, tools.clone(), &[text]);
        let bounds: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        for &i in &bounds {
            assert_eq!(
                scan(hold, tools.clone(), &[&text[..i], &text[i..]]),
                whole,
                "{text:?} split at {i}"
            );
        }
        for &i in bounds.iter().step_by(3) {
            for &j in bounds.iter().filter(|&&j| j >= i).step_by(2) {
                assert_eq!(
                    scan(hold, tools.clone(), &[&text[..i], &text[i..j], &text[j..]]),
                    whole,
                    "{text:?} split at {i} and {j}"
                );
            }
        }
        whole
    }

    fn text(text: &str) -> Piece {
        Piece::Text(text.into())
    }

    fn thought(text: &str) -> Piece {
        Piece::Thought(text.into())
    }

    fn calls(name: &str, arguments: &str, raw: &str) -> Piece {
        Piece::Calls {
            calls: vec![TextCall {
                name: name.into(),
                arguments: arguments.into(),
                id: None,
            }],
            raw: raw.into(),
        }
    }

    #[test]
    fn plain_text_streams_at_once_except_a_possible_tag() {
        let mut scanner = Scanner::new(false, tools());
        scanner.push("Hello <");
        assert_eq!(scanner.take(), vec![text("Hello ")]);
        scanner.push("b> and [TOOL_");
        assert_eq!(scanner.take(), vec![text("<b> and ")]);
        scanner.push("CALLED]");
        assert_eq!(scanner.take(), vec![text("[TOOL_CALLED]")]);
        scanner.finish(true);
        assert_eq!(scanner.take(), vec![]);
    }

    #[test]
    fn inline_thoughts() {
        assert_eq!(
            scan_all_splits(
                false,
                None,
                "\n<think>\nLet me think.\n</think>\n\nHello <think> is a tag."
            ),
            vec![thought("Let me think.\n"), text("Hello <think> is a tag.")]
        );
        // A thought cut by the length limit.
        assert_eq!(
            scan_all_splits(false, None, "<think>Thinking"),
            vec![thought("Thinking")]
        );
        // `<think>` after text is text.
        assert_eq!(
            scan_all_splits(false, None, "Hi <think>x</think>"),
            vec![text("Hi <think>x</think>")]
        );
    }

    #[test]
    fn thoughts_opened_by_the_prompt() {
        // Held: the leading text becomes a thought when `</think>` comes first.
        let mut scanner = Scanner::new(true, None);
        scanner.push("Okay, the user");
        assert_eq!(scanner.take(), vec![]);
        scanner.push(" wants hi.\n</thi");
        assert_eq!(scanner.take(), vec![]);
        scanner.push("nk>\n\nHi!");
        assert_eq!(
            scanner.take(),
            vec![thought("Okay, the user wants hi.\n"), text("Hi!")]
        );
        scanner.finish(true);
        assert_eq!(scanner.leading(), Leading::Thought);
        assert_eq!(
            scan_all_splits(true, None, "Okay.</think>Hi!"),
            vec![thought("Okay."), text("Hi!")]
        );
        // `<think>` first: the leading text is text.
        assert_eq!(
            scan_all_splits(true, None, "Hi <think>x</think> y"),
            vec![text("Hi <think>x</think> y")]
        );
        // No tag at all: text, released at the end.
        let mut scanner = Scanner::new(true, None);
        scanner.push("Just an answer.");
        assert_eq!(scanner.take(), vec![]);
        scanner.finish(true);
        assert_eq!(scanner.take(), vec![text("Just an answer.")]);
        assert_eq!(scanner.leading(), Leading::Answer);
        // Streaming models: a `</think>` with no `<think>` before is dropped and remembered.
        let mut scanner = Scanner::new(false, None);
        scanner.push("Okay.</think>\n\nHi!");
        scanner.finish(true);
        assert_eq!(scanner.take(), vec![text("Okay.Hi!")]);
        assert_eq!(scanner.leading(), Leading::Thought);
    }

    #[test]
    fn reasoning_sent_separately_releases_the_lead() {
        let mut scanner = Scanner::new(true, None);
        scanner.push("\n");
        scanner.structured_thought();
        scanner.push("Hi");
        assert_eq!(scanner.take(), vec![text("Hi")]);
    }

    #[test]
    fn hermes_calls_among_text() {
        let raw = "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}\n</tool_call>";
        assert_eq!(
            scan_all_splits(false, tools(), &format!("Reading.\n{raw}\nDone.")),
            vec![
                text("Reading.\n"),
                calls("read_file", r#"{"path":"a"}"#, raw),
                text("\nDone.")
            ]
        );
        // Without tools offered, markup is text.
        assert_eq!(scan(false, None, &[raw]), vec![text(raw)]);
    }

    #[test]
    fn calls_inside_a_held_lead_and_after_a_thought() {
        let raw = "<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": \"</think>\"}}</tool_call>";
        assert_eq!(
            scan_all_splits(true, tools(), raw),
            vec![calls("read_file", r#"{"path":"</think>"}"#, raw)]
        );
        assert_eq!(
            scan_all_splits(true, tools(), &format!("Hmm.</think>{raw}")),
            vec![
                thought("Hmm."),
                calls("read_file", r#"{"path":"</think>"}"#, raw)
            ]
        );
    }

    #[test]
    fn prose_about_tags_stays_text() {
        for prose in [
            "Wrap calls in <tool_call> tags, like <tool_call>this.",
            "The `<tool_call>` tag and [TOOL_CALLS] marker.",
            "<function= is how Qwen starts.",
        ] {
            assert_eq!(scan_all_splits(false, tools(), prose), vec![text(prose)]);
        }
        // Unterminated markup naming no tool is text too.
        let broken = "<tool_call>{\"path\": \"a\"}";
        assert_eq!(scan_all_splits(false, tools(), broken), vec![text(broken)]);
    }

    #[test]
    fn unterminated_and_broken_calls() {
        // The end tag never came.
        let raw = "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}";
        assert_eq!(
            scan_all_splits(false, tools(), raw),
            vec![calls("read_file", r#"{"path":"a"}"#, raw)]
        );
        // Broken JSON naming a tool: a call with the raw text, and the text after it.
        let raw = "<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": a}</tool_call>";
        assert_eq!(
            scan_all_splits(false, tools(), &format!("{raw} ok")),
            vec![
                calls(
                    "read_file",
                    "{\"name\": \"read_file\", \"arguments\": {\"path\": a}",
                    raw
                ),
                text("ok")
            ]
        );
    }

    #[test]
    fn other_dialects() {
        let raw = "[TOOL_REQUEST]{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}[END_TOOL_REQUEST]";
        assert_eq!(
            scan_all_splits(false, tools(), raw),
            vec![calls("read_file", r#"{"path":"a"}"#, raw)]
        );
        let first = "[TOOL_CALLS]read_file[ARGS]{\"path\": \"a\"}";
        let second = "[TOOL_CALLS]pwd[ARGS]{}";
        assert_eq!(
            scan_all_splits(false, tools(), &format!("{first}{second}")),
            vec![
                calls("read_file", "{\"path\": \"a\"}", first),
                calls("pwd", "{}", second)
            ]
        );
        let raw = "<function=read_file>\n<parameter=path>\nsrc/a.rs\n</parameter>\n</function>";
        assert_eq!(
            scan_all_splits(false, tools(), raw),
            vec![calls("read_file", r#"{"path":"src/a.rs"}"#, raw)]
        );
    }

    #[test]
    fn structured_calls_stop_the_reading() {
        let mut scanner = Scanner::new(false, tools());
        scanner.push("a <tool_call>{\"na");
        scanner.stop_calls();
        scanner.push("me\": 1}</tool_call>");
        scanner.finish(true);
        assert_eq!(
            join(scanner.take()),
            vec![text("a <tool_call>{\"name\": 1}</tool_call>")]
        );
    }

    #[test]
    fn held_suffixes() {
        let tags = [Tag::ThinkOpen, Tag::Call(CallKind::ToolCall)];
        assert_eq!(held_suffix("abc <tool_", &tags), 6);
        assert_eq!(held_suffix("abc <", &tags), 1);
        assert_eq!(held_suffix("abc <th", &tags), 3);
        assert_eq!(held_suffix("abc", &tags), 0);
        assert_eq!(held_suffix("<think>", &tags), 0);
        assert_eq!(held_suffix("é<", &tags), 1);
    }
}
