//! Where a tool call written as text ends, found incrementally however the text was cut into
//! chunks: by its end tag, by the end of its JSON value, or never (the stream ends first).
//!
//! The scanner reads the body one byte at a time and keeps only a small window of the last
//! bytes, so a long call (a whole file passed to `write_file`) costs linear time, and a tag split
//! across two chunks is found exactly as if it had come whole. It knows enough of each format to
//! ignore an end tag written *inside* the arguments: within a JSON string of a Hermes call, or
//! within a `<parameter=…>` value of a Qwen3-Coder call.

/// The dialects of tool calls written as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// Hermes/Qwen: `<tool_call>{"name": …, "arguments": …}</tool_call>`, or Qwen3-Coder's
    /// `<tool_call><function=NAME><parameter=P>value</parameter></function></tool_call>`.
    ToolCall,
    /// Qwen3-Coder without the wrapper: `<function=NAME>…</function>`.
    Function,
    /// LM Studio: `[TOOL_REQUEST]{"name": …, "arguments": …}[END_TOOL_REQUEST]`.
    ToolRequest,
    /// Mistral: `[TOOL_CALLS][{"name": …, "arguments": …}, …]` or `[TOOL_CALLS]name[ARGS]{…}`.
    ToolCalls,
    /// A call written inside the tag of a tool's result, as small models confuse the two:
    /// `<tool_response>{…}</tool_response>`, or `<tool_response>NAME</tool_response>`.
    ToolResponse,
    /// `<function_call>{…}</function_call>`, an older OpenAI-style wrapper.
    FunctionCall,
    /// Llama 3.1's `<|python_tag|>{…}`, ended by its JSON.
    PythonTag,
}

impl CallKind {
    /// Every dialect, in the order their start tags are looked for.
    pub(crate) const ALL: [CallKind; 7] = [
        CallKind::ToolCall,
        CallKind::Function,
        CallKind::ToolRequest,
        CallKind::ToolCalls,
        CallKind::ToolResponse,
        CallKind::FunctionCall,
        CallKind::PythonTag,
    ];

    /// The text that opens a call of this kind.
    pub(crate) fn start_tag(self) -> &'static str {
        match self {
            CallKind::ToolCall => "<tool_call>",
            CallKind::Function => "<function=",
            CallKind::ToolRequest => "[TOOL_REQUEST]",
            CallKind::ToolCalls => "[TOOL_CALLS]",
            CallKind::ToolResponse => "<tool_response>",
            CallKind::FunctionCall => "<function_call>",
            CallKind::PythonTag => "<|python_tag|>",
        }
    }

    /// What the log calls this shape of call.
    pub(crate) fn shape(self) -> &'static str {
        match self {
            CallKind::ToolCall => "tool_call_tag",
            CallKind::Function => "qwen3_coder_function",
            CallKind::ToolRequest => "lm_studio_tool_request",
            CallKind::ToolCalls => "mistral_tool_calls",
            CallKind::ToolResponse => "tool_response_tag",
            CallKind::FunctionCall => "function_call_tag",
            CallKind::PythonTag => "python_tag",
        }
    }

    /// Whether the body may be a bare tool name (a call with no arguments).
    fn takes_bare_name(self) -> bool {
        matches!(self, CallKind::ToolResponse | CallKind::FunctionCall)
    }

    /// The text that closes a call of this kind (Mistral's calls end with their JSON).
    pub(crate) fn end_tag(self) -> Option<&'static str> {
        match self {
            CallKind::ToolCall => Some("</tool_call>"),
            CallKind::Function => Some("</function>"),
            CallKind::ToolRequest => Some("[END_TOOL_REQUEST]"),
            CallKind::ToolResponse => Some("</tool_response>"),
            CallKind::FunctionCall => Some("</function_call>"),
            CallKind::ToolCalls | CallKind::PythonTag => None,
        }
    }
}

/// What the scanner knows after the bytes seen so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    /// The call goes on.
    More,
    /// The call is complete: its body is `body[..content_end]`, and `body[..consumed_end]`
    /// includes the end tag.
    End {
        /// Where the call's content stops.
        content_end: usize,
        /// Where the text after the call starts.
        consumed_end: usize,
    },
    /// The start tag was not followed by anything a call can start with: it was text.
    NotACall,
}

/// The end of one JSON object or array, byte by byte. Strings may be in single quotes too, as
/// models write Python's dicts for JSON, and in Python's triple quotes (a file's content).
#[derive(Clone, Debug, Default)]
pub(crate) struct JsonEnd {
    depth: usize,
    /// The quote of the string being read, if any.
    quote: Option<u8>,
    /// Whether that string opened with three quotes (and closes with three).
    triple: bool,
    /// Nothing read yet since the string's quote: a second quote now is an empty string, or
    /// the start of a triple quote.
    fresh: bool,
    /// Just read an empty string in these quotes: one more opens a triple-quoted string.
    empty: Option<u8>,
    /// In a triple-quoted string: the quotes just read in a row.
    run: u8,
    escaped: bool,
}

impl JsonEnd {
    /// Takes one byte; true when it closes the outermost value.
    pub(crate) fn feed(&mut self, byte: u8) -> bool {
        if let Some(quote) = self.quote {
            let fresh = std::mem::take(&mut self.fresh);
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if self.triple {
                self.run = if byte == quote { self.run + 1 } else { 0 };
                if self.run == 3 {
                    (self.quote, self.triple, self.run) = (None, false, 0);
                }
                return false;
            } else if byte == quote {
                self.quote = None;
                self.empty = fresh.then_some(quote);
            }
            self.run = 0;
            return false;
        }
        if let Some(quote) = self.empty.take()
            && byte == quote
        {
            (self.quote, self.triple) = (Some(quote), true);
            return false;
        }
        match byte {
            b'"' | b'\'' => (self.quote, self.fresh) = (Some(byte), true),
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                return self.depth == 0;
            }
            _ => {}
        }
        false
    }
}

#[derive(Clone, Debug)]
enum Phase {
    /// Before the first character that is not white space.
    Lead,
    /// Inside the JSON value of the call.
    Json(JsonEnd),
    /// After the JSON value, up to the end tag.
    AfterJson,
    /// Qwen3-Coder's XML-like format; whether a parameter value is open.
    Xml { in_parameter: bool },
    /// Mistral's `name[ARGS]…` form: the name (and an optional `[CALL_ID]id`), up to `[ARGS]`.
    Name,
    /// Mistral: after `[ARGS]`, before the JSON.
    ArgsLead,
    /// Something unusual after a name that is known: everything to the end is the arguments.
    Rest,
    /// A bare tool name, up to the end tag.
    BareName,
}

/// The longest token the scanner looks for (`[END_TOOL_REQUEST]`).
const WINDOW: usize = 18;

/// A Mistral tool name longer than this is not a name but text.
const MAX_NAME: usize = 128;

/// Finds the end of one call's body (the text after its start tag).
#[derive(Clone, Debug)]
pub(crate) struct BodyScanner {
    kind: CallKind,
    phase: Phase,
    /// Bytes of the body already read.
    scanned: usize,
    /// The last bytes read, to recognise tokens cut across chunks.
    window: Vec<u8>,
    /// Bytes of the name read (Mistral).
    name_len: usize,
    /// White space came between the start tag and the body.
    spaced: bool,
}

impl BodyScanner {
    /// A scanner for the body of a call of `kind`.
    pub(crate) fn new(kind: CallKind) -> Self {
        Self {
            kind,
            phase: Phase::Lead,
            scanned: 0,
            window: Vec::with_capacity(WINDOW),
            name_len: 0,
            spaced: false,
        }
    }

    /// Reads what `body` gained since the last call (`body` only ever grows).
    pub(crate) fn scan(&mut self, body: &str) -> BodyEnd {
        let bytes = body.as_bytes();
        while self.scanned < bytes.len() {
            let index = self.scanned;
            let byte = bytes[index];
            self.scanned += 1;
            if self.window.len() == WINDOW {
                self.window.remove(0);
            }
            self.window.push(byte);
            let end = |tag: &str| BodyEnd::End {
                content_end: index + 1 - tag.len(),
                consumed_end: index + 1,
            };
            match &mut self.phase {
                Phase::Lead => {
                    if byte.is_ascii_whitespace() {
                        if self.kind == CallKind::Function {
                            // `<function=` is followed by the name itself.
                            return BodyEnd::NotACall;
                        }
                        self.spaced = true;
                        continue;
                    }
                    self.phase = match (self.kind, byte) {
                        (
                            CallKind::ToolCall | CallKind::ToolRequest | CallKind::ToolCalls,
                            b'{',
                        )
                        | (CallKind::ToolCall | CallKind::ToolCalls, b'[') => {
                            let mut json = JsonEnd::default();
                            json.feed(byte);
                            Phase::Json(json)
                        }
                        (CallKind::ToolCall, b'<') => Phase::Xml {
                            in_parameter: false,
                        },
                        (CallKind::Function, byte) if is_name_byte(byte) => Phase::Xml {
                            in_parameter: false,
                        },
                        (CallKind::ToolCalls, byte) if is_name_byte(byte) && !self.spaced => {
                            self.name_len = 1;
                            Phase::Name
                        }
                        (
                            CallKind::ToolResponse | CallKind::FunctionCall | CallKind::PythonTag,
                            b'{' | b'[',
                        ) => {
                            let mut json = JsonEnd::default();
                            json.feed(byte);
                            Phase::Json(json)
                        }
                        (kind, byte) if kind.takes_bare_name() && is_name_byte(byte) => {
                            self.name_len = 1;
                            Phase::BareName
                        }
                        _ => return BodyEnd::NotACall,
                    };
                }
                Phase::Json(json) => {
                    if json.feed(byte) {
                        if self.kind.end_tag().is_none() {
                            return BodyEnd::End {
                                content_end: index + 1,
                                consumed_end: index + 1,
                            };
                        }
                        self.phase = Phase::AfterJson;
                    }
                }
                Phase::AfterJson => {
                    if let Some(tag) = self.kind.end_tag()
                        && self.window.ends_with(tag.as_bytes())
                    {
                        return end(tag);
                    }
                }
                Phase::Xml { in_parameter } => {
                    if self.window.ends_with(b"<parameter=") {
                        *in_parameter = true;
                    } else if self.window.ends_with(b"</parameter>") {
                        *in_parameter = false;
                    } else if !*in_parameter
                        && let Some(tag) = self.kind.end_tag()
                        && self.window.ends_with(tag.as_bytes())
                    {
                        return end(tag);
                    }
                }
                Phase::Name => {
                    if self.window.ends_with(b"[ARGS]") {
                        self.phase = Phase::ArgsLead;
                        continue;
                    }
                    self.name_len += 1;
                    if self.name_len > MAX_NAME {
                        return BodyEnd::NotACall;
                    }
                    // `[CALL_ID]` and `[ARGS]` are made of name bytes and brackets.
                    if !(is_name_byte(byte) || byte == b'[' || byte == b']') {
                        return BodyEnd::NotACall;
                    }
                }
                Phase::ArgsLead => {
                    if byte.is_ascii_whitespace() {
                        continue;
                    }
                    self.phase = if byte == b'{' || byte == b'[' {
                        let mut json = JsonEnd::default();
                        json.feed(byte);
                        Phase::Json(json)
                    } else {
                        Phase::Rest
                    };
                }
                Phase::Rest => {}
                Phase::BareName => {
                    if let Some(tag) = self.kind.end_tag()
                        && self.window.ends_with(tag.as_bytes())
                    {
                        return end(tag);
                    }
                    self.name_len += 1;
                    // A name, white space, and the end tag's bytes: anything else is prose.
                    let tag_byte = matches!(byte, b'<' | b'/' | b'>');
                    if self.name_len > MAX_NAME + WINDOW
                        || !(is_name_byte(byte) || byte.is_ascii_whitespace() || tag_byte)
                    {
                        return BodyEnd::NotACall;
                    }
                }
            }
        }
        BodyEnd::More
    }
}

/// A byte that can be part of a tool name.
fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b':' | b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end found when `body` comes in pieces of `size` bytes (on character boundaries).
    fn scan_in_pieces(kind: CallKind, body: &str, size: usize) -> BodyEnd {
        let mut scanner = BodyScanner::new(kind);
        let mut end = 0;
        let mut result = BodyEnd::More;
        while end < body.len() {
            end = (end + size).min(body.len());
            while !body.is_char_boundary(end) {
                end += 1;
            }
            result = scanner.scan(&body[..end]);
            if result != BodyEnd::More {
                break;
            }
        }
        result
    }

    fn ends(kind: CallKind, body: &str) -> BodyEnd {
        let whole = scan_in_pieces(kind, body, body.len().max(1));
        for size in 1..body.len().max(2) {
            assert_eq!(
                scan_in_pieces(kind, body, size),
                whole,
                "{body:?} by {size}"
            );
        }
        whole
    }

    fn end_at(body: &str, tag: &str) -> BodyEnd {
        let start = body.find(tag).unwrap();
        BodyEnd::End {
            content_end: start,
            consumed_end: start + tag.len(),
        }
    }

    #[test]
    fn hermes_json_ignores_end_tags_inside_strings() {
        let body = r#"{"name": "write_file", "arguments": {"content": "a </tool_call> b \"}"}}
</tool_call> after"#;
        let expected = BodyEnd::End {
            content_end: body.rfind("</tool_call>").unwrap(),
            consumed_end: body.rfind("</tool_call>").unwrap() + 12,
        };
        assert_eq!(ends(CallKind::ToolCall, body), expected);
    }

    #[test]
    fn qwen3_coder_ignores_end_tags_inside_parameters() {
        let body = "\n<function=write_file>\n<parameter=content>\nx </tool_call> y\n</parameter>\n</function>\n</tool_call>";
        let expected = BodyEnd::End {
            content_end: body.rfind("</tool_call>").unwrap(),
            consumed_end: body.len(),
        };
        assert_eq!(ends(CallKind::ToolCall, body), expected);
        let bare = "read_file>\n<parameter=path>\na\n</parameter>\n</function> and more";
        assert_eq!(ends(CallKind::Function, bare), end_at(bare, "</function>"));
    }

    #[test]
    fn lm_studio_and_mistral() {
        let body = r#"{"name": "f", "arguments": {}}[END_TOOL_REQUEST]tail"#;
        assert_eq!(
            ends(CallKind::ToolRequest, body),
            end_at(body, "[END_TOOL_REQUEST]")
        );
        let body = r#" [{"name": "f", "arguments": {"a": "]"}}] tail"#;
        let json_end = body.find("] tail").unwrap() + 1;
        assert_eq!(
            ends(CallKind::ToolCalls, body),
            BodyEnd::End {
                content_end: json_end,
                consumed_end: json_end
            }
        );
        let body = r#"read_file[CALL_ID]a1B2c3D4e[ARGS]{"path": "a"}[TOOL_CALLS]"#;
        let json_end = body.find("}").unwrap() + 1;
        assert_eq!(
            ends(CallKind::ToolCalls, body),
            BodyEnd::End {
                content_end: json_end,
                consumed_end: json_end
            }
        );
    }

    #[test]
    fn prose_after_a_start_tag_is_not_a_call() {
        assert_eq!(
            ends(CallKind::ToolCall, " tags wrap calls"),
            BodyEnd::NotACall
        );
        assert_eq!(ends(CallKind::ToolRequest, "[x]"), BodyEnd::NotACall);
        assert_eq!(
            ends(CallKind::ToolCalls, "read file[ARGS]{}"),
            BodyEnd::NotACall
        );
        assert_eq!(ends(CallKind::Function, " x"), BodyEnd::NotACall);
    }

    #[test]
    fn unfinished_bodies_go_on() {
        for (kind, body) in [
            (CallKind::ToolCall, "  {\"name\": \"f\", \"arguments\": {"),
            (CallKind::ToolCall, "{\"name\": \"f\"}\n</tool_"),
            (CallKind::ToolCalls, "read_file[AR"),
            (CallKind::ToolCalls, "read_file[ARGS]oops"),
            (CallKind::Function, "f>\n<parameter=a>\n</function>"),
        ] {
            assert_eq!(ends(kind, body), BodyEnd::More, "{body:?}");
        }
    }
}
