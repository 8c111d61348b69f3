//! A tolerant JSON reader for what small models write when they mean JSON: single quotes,
//! trailing commas, unquoted keys, Python's `True`/`False`/`None` and triple-quoted strings, and
//! objects or arrays left open at the end of the text. Valid JSON reads exactly as `serde_json` reads it.
//!
//! It reads only text already bounded by the caller (a tool-call candidate of at most 64 KiB),
//! and nests at most [`MAX_DEPTH`] levels, so a hostile answer cannot exhaust the stack.

use serde_json::{Map, Number, Value};

/// How deeply values may nest; deeper text is not read.
const MAX_DEPTH: usize = 64;

/// The values `text` starts with, one after another (white space or commas between them), up
/// to the first thing that is not one: trailing junk, such as a brace too many, is ignored.
pub(crate) fn leading_values(text: &str) -> Vec<Value> {
    read_values(text).0
}

/// The values `text` is made of, when nothing else is in it (but white space and commas).
pub(crate) fn all_values(text: &str) -> Option<Vec<Value>> {
    let (values, end) = read_values(text);
    text[end..].trim().is_empty().then_some(values)
}

/// The leading values, and where they end.
fn read_values(text: &str) -> (Vec<Value>, usize) {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        text,
        at: 0,
    };
    let mut values = Vec::new();
    loop {
        reader.skip_space();
        if !values.is_empty() {
            // Values in a row may also be separated by a comma.
            reader.eat(b',');
            reader.skip_space();
        }
        if reader.at >= reader.bytes.len() {
            return (values, reader.at);
        }
        let start = reader.at;
        match reader.value(0) {
            Some(value) => values.push(value),
            None => return (values, start),
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn skip_space(&mut self) {
        while let Some(byte) = self.peek() {
            if byte.is_ascii_whitespace() {
                self.at += 1;
            } else {
                break;
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            quote @ (b'"' | b'\'') => self.string(quote).map(Value::String),
            b'-' | b'0'..=b'9' => self.number(),
            _ => match self.word()? {
                "true" | "True" => Some(Value::Bool(true)),
                "false" | "False" => Some(Value::Bool(false)),
                "null" | "None" => Some(Value::Null),
                _ => None,
            },
        }
    }

    fn object(&mut self, depth: usize) -> Option<Value> {
        self.at += 1;
        let mut map = Map::new();
        loop {
            self.skip_space();
            match self.peek() {
                // Left open at the end of the text: closed here.
                None => return Some(Value::Object(map)),
                Some(b'}') => {
                    self.at += 1;
                    return Some(Value::Object(map));
                }
                _ => {}
            }
            let key = match self.peek()? {
                quote @ (b'"' | b'\'') => self.string(quote)?,
                _ => self.word()?.to_owned(),
            };
            self.skip_space();
            if !self.eat(b':') {
                return None;
            }
            let value = self.value(depth + 1)?;
            map.insert(key, value);
            self.skip_space();
            match self.peek() {
                None => return Some(Value::Object(map)),
                Some(b',') => self.at += 1,
                Some(b'}') => {}
                Some(_) => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Value> {
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => return Some(Value::Array(items)),
                Some(b']') => {
                    self.at += 1;
                    return Some(Value::Array(items));
                }
                _ => {}
            }
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.peek() {
                None => return Some(Value::Array(items)),
                Some(b',') => self.at += 1,
                Some(b']') => {}
                Some(_) => return None,
            }
        }
    }

    /// A bare word: an unquoted key or a literal.
    fn word(&mut self) -> Option<&str> {
        let start = self.at;
        while let Some(byte) = self.peek() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'$' | b'-' | b'.') {
                self.at += 1;
            } else {
                break;
            }
        }
        (self.at > start
            && !self.bytes[start].is_ascii_digit()
            && self.bytes[start] != b'-'
            && self.bytes[start] != b'.')
            .then(|| &self.text[start..self.at])
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        while let Some(byte) = self.peek() {
            if byte.is_ascii_digit() || matches!(byte, b'-' | b'+' | b'.' | b'e' | b'E') {
                self.at += 1;
            } else {
                break;
            }
        }
        let text = &self.text[start..self.at];
        serde_json::from_str::<Number>(text)
            .ok()
            .or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))
            .map(Value::Number)
    }

    /// A string in `quote`s, or in Python's triple quotes (`"""…"""`, `'''…'''`: small models
    /// write a file's content so), its escapes undone (an unknown escape keeps its character).
    /// A string still open at the end of the text is not read.
    fn string(&mut self, quote: u8) -> Option<String> {
        let triple = [quote; 3];
        let close: &[u8] = if self.bytes[self.at..].starts_with(&triple) {
            &triple
        } else {
            &triple[..1]
        };
        self.at += close.len();
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(byte) = self.peek() {
                if byte == b'\\' || (byte == quote && self.bytes[self.at..].starts_with(close)) {
                    break;
                }
                self.at += 1;
            }
            out.push_str(&self.text[start..self.at]);
            match self.peek()? {
                b'\\' => {
                    self.at += 1;
                    let escaped = self.peek()?;
                    self.at += 1;
                    match escaped {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => {
                            // `\"`, `\\`, `\/`, `\'`, and anything else: the character itself.
                            let rest = &self.text[self.at - 1..];
                            let character = rest.chars().next()?;
                            out.push(character);
                            self.at += character.len_utf8() - 1;
                        }
                    }
                }
                _ => {
                    self.at += close.len();
                    return Some(out);
                }
            }
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` read), surrogate pairs joined.
    fn unicode_escape(&mut self) -> Option<char> {
        let high = self.hex4()?;
        if (0xD800..0xDC00).contains(&high) && self.text[self.at..].starts_with("\\u") {
            self.at += 2;
            let low = self.hex4()?;
            let code = 0x10000 + ((high - 0xD800) << 10) + (low.checked_sub(0xDC00)? & 0x3FF);
            return char::from_u32(code);
        }
        Some(char::from_u32(high).unwrap_or('\u{FFFD}'))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        let code = u32::from_str_radix(digits, 16).ok()?;
        self.at += 4;
        Some(code)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(text: &str) -> Option<Value> {
        let mut values = leading_values(text);
        (values.len() == 1).then(|| values.remove(0))
    }

    #[test]
    fn valid_json_reads_as_serde_reads_it() {
        for text in [
            r#"{"name": "grep", "arguments": {"pattern": "a\"b\\c\n\u00e9\ud83e\udd99", "n": -1.5e3, "k": 12345678901234, "x": [true, false, null, {}]}}"#,
            "[]",
            r#""just a string""#,
            "0",
        ] {
            assert_eq!(
                one(text),
                Some(serde_json::from_str::<Value>(text).unwrap()),
                "{text}"
            );
        }
    }

    #[test]
    fn what_small_models_write() {
        assert_eq!(
            one(
                "{'name': 'grep', 'arguments': {'pattern': 'it\\'s', 'hidden': False, 'max': None, 'regex': True,},}"
            ),
            Some(
                json!({"name": "grep", "arguments": {"pattern": "it's", "hidden": false, "max": null, "regex": true}})
            )
        );
        assert_eq!(
            one("{name: \"list_dir\", arguments: {path: \".\"}}"),
            Some(json!({"name": "list_dir", "arguments": {"path": "."}}))
        );
        // A file's content in Python's triple quotes: quotes and newlines inside are kept.
        assert_eq!(
            one(
                r#"{"name": "write_file", "arguments": {"path": "t.py", "content": """
print("a", 'b')
"""}}"#
            ),
            Some(
                json!({"name": "write_file", "arguments": {"path": "t.py", "content": "\nprint(\"a\", 'b')\n"}})
            )
        );
        assert_eq!(one("'''it's'''"), Some(json!("it's")));
        assert_eq!(one(r#"["", """x"""]"#), Some(json!(["", "x"])));
        // Left open at the end: closed.
        assert_eq!(
            one(r#"{"name": "read_file", "arguments": {"path": "a""#),
            Some(json!({"name": "read_file", "arguments": {"path": "a"}}))
        );
        // Several in a row, then junk.
        assert_eq!(
            leading_values(r#"{"a": 1} {"b": 2}, {"c": 3}}} tail"#),
            vec![json!({"a": 1}), json!({"b": 2}), json!({"c": 3})]
        );
    }

    #[test]
    fn what_is_not_json_is_not_read() {
        for text in [
            r#"{"path": a.rs}"#,
            r#"{"a": "unterminated"#,
            r#"{"a": """never closed""#,
            "{\"a\" 1}",
            "hello",
            "{fn main() {}}",
        ] {
            assert_eq!(one(text), None, "{text}");
        }
        let deep = "[".repeat(10_000);
        assert_eq!(one(&deep), None);
    }
}
