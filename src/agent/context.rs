//! Fitting a conversation into a small context window: estimating its size, shortening old
//! tool outputs and long answers, and summarising older turns, so no request is sent that
//! cannot fit.

use crate::llm::{Message, ToolSpec};

/// Context window assumed when neither the server nor the configuration says.
pub(crate) const DEFAULT_CONTEXT_TOKENS: u32 = 8192;
/// The fewest tokens left for the answer before a request is refused as too large.
pub(crate) const MIN_ANSWER_TOKENS: u32 = 256;
/// The most tokens one answer asks for when the user set no `max_tokens`, however large the
/// window: a small model that loops should not generate for minutes.
pub(crate) const MAX_ANSWER_TOKENS: u32 = 4096;
/// Old tool outputs are shortened to this many characters (head and tail kept).
const SHORTENED_TOOL_OUTPUT: usize = 600;
/// The shortest a long answer is cut to (head and tail kept) when nothing else makes room.
const SHORTEST_ANSWER: usize = 600;
/// Turns kept verbatim when older ones are summarised.
pub(crate) const KEPT_TURNS: usize = 2;

/// A deliberately pessimistic token estimate: about 3 bytes per token, plus framing.
pub(crate) fn estimate_tokens(text: &str) -> u32 {
    (text.len() as u32).div_ceil(3)
}

fn message_tokens(message: &Message) -> u32 {
    const FRAMING: u32 = 8;
    FRAMING
        + match message {
            Message::System { content } | Message::User { content } => estimate_tokens(content),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                content.as_deref().map_or(0, estimate_tokens)
                    + tool_calls
                        .iter()
                        .map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments) + FRAMING)
                        .sum::<u32>()
            }
            Message::Tool { content, .. } => estimate_tokens(content),
            Message::Images { images } => images.len() as u32 * crate::image::IMAGE_TOKENS,
        }
}

/// Estimated tokens of the tool schemas (constant for a turn: compute it once).
pub(crate) fn tool_tokens(tools: &[ToolSpec]) -> u32 {
    tools
        .iter()
        .map(|t| {
            estimate_tokens(&t.name)
                + estimate_tokens(&t.description)
                + estimate_tokens(&t.parameters.to_string())
        })
        .sum()
}

/// Estimated tokens of a request's prompt, given its tools' estimate.
pub(crate) fn prompt_tokens(system: &Message, tool_tokens: u32, history: &[Message]) -> u32 {
    message_tokens(system) + tool_tokens + history_tokens(history)
}

/// Estimated tokens of the conversation after the system prompt.
pub(crate) fn history_tokens(history: &[Message]) -> u32 {
    history.iter().map(message_tokens).sum()
}

/// Keeps the head and tail of `text` within about `limit` characters, saying what was cut.
pub(crate) fn head_and_tail(text: &str, limit: usize, hint: &str) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let half = limit / 2;
    let head_end = floor_char_boundary(text, half);
    let tail_start = ceil_char_boundary(text, text.len() - half);
    let cut = &text[head_end..tail_start];
    format!(
        "{}\n[… {} characters ({} lines) cut{hint} …]\n{}",
        &text[..head_end],
        cut.len(),
        cut.lines().count(),
        &text[tail_start..]
    )
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn ceil_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

/// Index of the first message of the `keep` most recent turns (a turn starts at a user
/// message), or 0 when there are no more turns than that.
pub(crate) fn recent_turns_start(history: &[Message], keep: usize) -> usize {
    let starts: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(_, m)| matches!(m, Message::User { .. }))
        .map(|(i, _)| i)
        .collect();
    if starts.len() <= keep {
        0
    } else {
        starts[starts.len() - keep]
    }
}

/// Shortens tool outputs older than `before`. Returns whether anything changed.
pub(crate) fn shorten_old_tool_outputs(history: &mut [Message], before: usize) -> bool {
    let mut changed = false;
    for message in &mut history[..before] {
        if let Message::Tool { content, .. } = message
            && content.len() > SHORTENED_TOOL_OUTPUT + 100
        {
            *content = head_and_tail(
                content,
                SHORTENED_TOOL_OUTPUT,
                " from this old tool output to save context",
            );
            changed = true;
        }
    }
    changed
}

/// The most characters of one assistant answer kept before compaction cuts deeper: a quarter
/// of the window (at 3 bytes per token), as for one tool result.
pub(crate) fn long_answer_limit(window: u32) -> usize {
    (window as usize / 4 * 3).max(SHORTEST_ANSWER)
}

/// Shortens every assistant answer longer than about `limit` characters, keeping its head and
/// tail. An answer larger than the window (a small model that looped until `max_tokens`, or was
/// cancelled) would otherwise make every later request too large, newest turn or not. Returns
/// whether anything changed.
pub(crate) fn shorten_long_answers(history: &mut [Message], limit: usize) -> bool {
    let limit = limit.max(SHORTEST_ANSWER);
    let mut changed = false;
    for message in history {
        if let Message::Assistant {
            content: Some(content),
            ..
        } = message
            // Room for the marker, so an answer already shortened to `limit` stays as it is.
            && content.len() > limit + 100
        {
            *content = head_and_tail(content, limit, " from this long answer to save context");
            changed = true;
        }
    }
    changed
}

/// Shortens ever deeper (down to [`SHORTEST_ANSWER`]) until `fits` holds or nothing is left
/// to cut. Returns whether anything changed.
pub(crate) fn shorten_answers_until(
    history: &mut [Message],
    window: u32,
    fits: impl Fn(&[Message]) -> bool,
) -> bool {
    let mut changed = false;
    let mut limit = long_answer_limit(window);
    while !fits(history) {
        changed |= shorten_long_answers(history, limit);
        if limit <= SHORTEST_ANSWER {
            break;
        }
        limit = (limit / 2).max(SHORTEST_ANSWER);
    }
    changed
}

/// What enters the history of an answer the user cancelled part-way: its head and tail within
/// `limit` characters, marked as interrupted so the model does not take it for a finished one.
pub(crate) fn interrupted_answer(text: &str, limit: usize) -> String {
    let kept = head_and_tail(text, limit, " from this answer to save context");
    format!("{kept}\n[answer interrupted: the user cancelled it here]")
}

/// What a model that cannot see reads where images were shown.
pub(crate) fn images_note(images: &[crate::image::Image]) -> String {
    let shown: Vec<String> = images.iter().map(|i| i.placeholder()).collect();
    format!(
        "[{} image(s) were shown here, which the current model cannot see: {}]",
        images.len(),
        shown.join(" ")
    )
}

/// The older part of a conversation as plain text, for the model to summarise.
pub(crate) fn transcript(messages: &[Message]) -> String {
    let mut out = String::new();
    for message in messages {
        match message {
            Message::User { content } => out.push_str(&format!("USER: {content}\n")),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                if let Some(content) = content {
                    out.push_str(&format!("ASSISTANT: {content}\n"));
                }
                for call in tool_calls {
                    out.push_str(&format!(
                        "ASSISTANT called {}({})\n",
                        call.name,
                        head_and_tail(&call.arguments, 300, "")
                    ));
                }
            }
            Message::Tool { content, .. } => out.push_str(&format!(
                "TOOL RESULT: {}\n",
                head_and_tail(content, 400, "")
            )),
            Message::System { content } => out.push_str(&format!("NOTE: {content}\n")),
            Message::Images { images } => {
                let shown: Vec<String> = images.iter().map(|i| i.placeholder()).collect();
                out.push_str(&format!("IMAGES SHOWN: {}\n", shown.join(" ")));
            }
        }
    }
    out
}

/// Replaces `history[..keep_from]` with a summary exchange.
pub(crate) fn replace_with_summary(history: &mut Vec<Message>, keep_from: usize, summary: &str) {
    let summary = vec![
        Message::User {
            content: format!(
                "[Summary of our earlier conversation, written to save context]\n{summary}"
            ),
        },
        Message::Assistant {
            content: Some("Understood; I will continue from there.".to_owned()),
            tool_calls: Vec::new(),
        },
    ];
    history.splice(..keep_from, summary);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;

    fn turn(user: &str, tool_output: &str) -> Vec<Message> {
        vec![
            Message::User {
                content: user.to_owned(),
            },
            Message::Assistant {
                content: None,
                tool_calls: vec![ToolCall {
                    id: "c".into(),
                    name: "read_file".into(),
                    arguments: "{}".into(),
                }],
            },
            Message::Tool {
                tool_call_id: "c".into(),
                content: tool_output.to_owned(),
            },
            Message::Assistant {
                content: Some("ok".into()),
                tool_calls: Vec::new(),
            },
        ]
    }

    #[test]
    fn head_and_tail_keeps_both_ends_and_says_what_was_cut() {
        let text = format!("HEAD{}TAIL", "é".repeat(1000));
        let short = head_and_tail(&text, 100, "");
        assert!(
            short.starts_with("HEAD") && short.ends_with("TAIL"),
            "{short}"
        );
        assert!(short.contains("characters") && short.len() < 300);
        assert_eq!(head_and_tail("small", 100, ""), "small");
    }

    #[test]
    fn only_old_tool_outputs_are_shortened() {
        let big = "x".repeat(5000);
        let mut history = [turn("one", &big), turn("two", &big), turn("three", &big)].concat();
        let keep_from = recent_turns_start(&history, 2);
        assert_eq!(keep_from, 4);
        assert!(shorten_old_tool_outputs(&mut history, keep_from));
        let sizes: Vec<usize> = history
            .iter()
            .filter_map(|m| match m {
                Message::Tool { content, .. } => Some(content.len()),
                _ => None,
            })
            .collect();
        assert!(
            sizes[0] < 1000 && sizes[1] == 5000 && sizes[2] == 5000,
            "{sizes:?}"
        );
        assert!(
            !shorten_old_tool_outputs(&mut history, keep_from),
            "idempotent"
        );
    }

    #[test]
    fn a_summary_replaces_old_turns_and_keeps_roles_alternating() {
        let mut history = [turn("one", "a"), turn("two", "b"), turn("three", "c")].concat();
        let keep_from = recent_turns_start(&history, 2);
        replace_with_summary(&mut history, keep_from, "we read a file");
        assert!(
            matches!(&history[0], Message::User { content } if content.contains("we read a file"))
        );
        assert!(matches!(&history[1], Message::Assistant { .. }));
        assert!(matches!(&history[2], Message::User { content } if content == "two"));
        assert_eq!(history.len(), 2 + 8);
    }

    fn answer(text: &str) -> Message {
        Message::Assistant {
            content: Some(text.to_owned()),
            tool_calls: Vec::new(),
        }
    }

    fn answer_text(message: &Message) -> &str {
        match message {
            Message::Assistant {
                content: Some(text),
                ..
            } => text,
            other => panic!("not an answer: {other:?}"),
        }
    }

    #[test]
    fn long_answers_keep_head_and_tail_and_say_what_was_cut() {
        let long = format!("HEAD{}TAIL", "la ".repeat(10_000));
        let mut history = vec![
            Message::User {
                content: "q".into(),
            },
            answer(&long),
            answer("short"),
        ];
        assert!(shorten_long_answers(&mut history, 2000));
        let kept = answer_text(&history[1]);
        assert!(kept.starts_with("HEAD") && kept.ends_with("TAIL"), "{kept}");
        assert!(kept.len() < 2200 && kept.contains("characters"), "{kept}");
        assert_eq!(answer_text(&history[2]), "short");
        assert!(!shorten_long_answers(&mut history, 2000), "idempotent");
    }

    #[test]
    fn answers_are_cut_deeper_until_the_history_fits() {
        let mut history = vec![answer(&"x".repeat(30_000))];
        let system = Message::System {
            content: String::new(),
        };
        let fits = |h: &[Message]| prompt_tokens(&system, 0, h) <= 1000;
        assert!(shorten_answers_until(&mut history, 8192, fits));
        assert!(fits(&history), "{}", answer_text(&history[0]).len());
        // What cannot be made to fit stops at the shortest form rather than looping.
        let never = |_: &[Message]| false;
        shorten_answers_until(&mut history, 8192, never);
        assert!(answer_text(&history[0]).len() < SHORTEST_ANSWER + 100);
    }

    #[test]
    fn an_interrupted_answer_is_shortened_and_marked() {
        let kept = interrupted_answer(&format!("HEAD{}", "y".repeat(10_000)), 1000);
        assert!(kept.starts_with("HEAD") && kept.len() < 1200, "{kept}");
        assert!(kept.ends_with("[answer interrupted: the user cancelled it here]"));
        assert!(interrupted_answer("brief", 1000).starts_with("brief\n[answer interrupted"));
    }

    #[test]
    fn estimates_grow_with_content() {
        let system = Message::System {
            content: "s".repeat(300),
        };
        let small = prompt_tokens(&system, 0, &turn("hi", "x"));
        let large = prompt_tokens(&system, 0, &turn("hi", &"x".repeat(3000)));
        assert!(large >= small + 990, "{small} {large}");
    }
}
