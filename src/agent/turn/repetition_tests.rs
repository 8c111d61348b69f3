use proptest::prelude::*;

use super::*;

/// Feeds `text` in `pieces` (byte lengths, cut on character boundaries); the first loop found.
fn feed(text: &str, pieces: &[usize]) -> Option<(TextLoop, usize)> {
    let mut detector = TextRepetition::default();
    let mut rest = text;
    let mut fed = 0;
    let mut sizes = pieces.iter().copied().cycle();
    while !rest.is_empty() {
        let mut cut = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        fed += piece.len();
        if let Some(found) = detector.push(piece) {
            return Some((found, fed));
        }
    }
    None
}

/// Fed in chunks of a few bytes, as tokens arrive.
fn stream(text: &str) -> Option<(TextLoop, usize)> {
    feed(text, &[3, 5, 1, 7, 4])
}

#[test]
fn a_repeated_line_fires_and_keeps_the_first_copy() {
    let line = "I will search the code for the function total_value.\n";
    let text = format!("Let me look.\n{}", line.repeat(100));
    let (found, fed) = stream(&text).expect("a loop");
    assert_eq!(found.keep, "Let me look.\n".len() + line.len());
    assert_eq!(
        found.quote,
        "I will search the code for the function total_value."
    );
    assert!(found.copies >= MIN_COPIES);
    assert!(
        fed < 20 * line.len(),
        "found early: after {fed} bytes of {}",
        text.len()
    );
}

#[test]
fn a_repeated_sentence_on_one_line_fires() {
    let text = format!("Sure. {}", "I am sorry, I cannot do that. ".repeat(60));
    let (found, _) = stream(&text).expect("a loop");
    assert_eq!(&text[..found.keep], "Sure. I am sorry, I cannot do that.");
    assert_eq!(found.quote, "I am sorry, I cannot do that.");
}

#[test]
fn near_identical_copies_differing_in_case_and_spacing_fire() {
    let mut text = String::from("Answer:\n");
    for i in 0..80 {
        text.push_str(if i % 2 == 0 {
            "The total is computed in src/cart.rs.\n"
        } else {
            "the total  is computed in src/cart.rs.\n\n"
        });
    }
    assert!(stream(&text).is_some());
}

#[test]
fn a_repeated_multi_line_block_fires() {
    let block = "```json\n{\"name\": \"grep\", \"arguments\": {\"pattern\": \"total_value\", \"path\": \".\"}}\n```\n\n";
    let text = block.repeat(20);
    let (found, _) = stream(&text).expect("a loop");
    assert_eq!(found.keep, block.len(), "one copy kept");
    assert!(
        found.quote.starts_with("```json {\"name\": \"grep\""),
        "{}",
        found.quote
    );
}

#[test]
fn a_long_run_of_one_character_fires_late() {
    let text = "=".repeat(3000);
    let (_, fed) = stream(&text).expect("a loop");
    assert!(fed >= SHORT_SPAN, "{fed}");
}

#[test]
fn a_repetition_that_stopped_does_not_fire_later() {
    // Three copies of a short line, then normal text: too short a run to fire.
    let text = format!(
        "{}and then the real answer follows, which is long enough to matter.\n",
        "ok\n".repeat(3)
    );
    assert!(stream(&text).is_none());
}

/// Text a model legitimately writes, which must never be taken for a loop.
fn normal_texts() -> Vec<(&'static str, String)> {
    let mut listing = String::from("Here are the files:\n");
    for i in 0..300 {
        listing.push_str(&format!("- src/module_{i}/mod.rs\n"));
    }
    let mut table = String::from("| name | qty | price |\n|------|-----|-------|\n");
    for i in 0..200 {
        table.push_str(&format!("| item{i} | {} | 0.{} |\n", i % 7, i % 10));
    }
    let mut zeros = String::from("| a | b |\n|---|---|\n");
    for i in 0..150 {
        zeros.push_str(&format!("| {i} | 0 |\n"));
    }
    let mut braces = String::from("fn main() {\n");
    for depth in 0..40 {
        braces.push_str(&format!("{}if x{depth} {{\n", "    ".repeat(depth + 1)));
    }
    for depth in (0..40).rev() {
        braces.push_str(&format!("{}}}\n", "    ".repeat(depth + 1)));
    }
    braces.push_str("}\n");
    let mut asserts = String::from("#[test]\nfn adds() {\n");
    for i in 0..200 {
        asserts.push_str(&format!("    assert_eq!(add({i}, 1), {});\n", i + 1));
    }
    asserts.push_str("}\n");
    let mut numbered = String::new();
    for i in 1..=200 {
        numbered.push_str(&format!("{i}. Check the configuration file again.\n"));
    }
    let mut rambling = String::from("START OF THE ANSWER\n");
    for i in 0..600 {
        rambling.push_str(&format!("I will now repeat myself, line {i}.\n"));
    }
    let mut lookup = String::from("static TABLE: [u8; 256] = [\n");
    for _ in 0..16 {
        lookup.push_str("    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,\n");
    }
    lookup.push_str("];\n");
    let rules = format!(
        "Title\n{}\n\nText under it.\n{}\n",
        "=".repeat(120),
        "-".repeat(120)
    );
    let mut match_arms = String::from("match c {\n");
    for c in 'a'..='z' {
        match_arms.push_str(&format!(
            "    '{c}' => Some(Letter::{}),\n",
            c.to_ascii_uppercase()
        ));
    }
    match_arms.push_str("    _ => None,\n}\n");
    let mut css = String::new();
    for i in 0..60 {
        css.push_str(&format!(".col-{i} {{\n  margin: 0;\n  padding: 0;\n}}\n"));
    }
    vec![
        ("a file listing", listing),
        ("a table", table),
        ("a table of zeros", zeros),
        ("closing braces", braces),
        ("a test with similar lines", asserts),
        ("a numbered list of the same step", numbered),
        ("lines that differ only in a number", rambling),
        ("a lookup table of zeros", lookup),
        ("rules under titles", rules),
        ("match arms", match_arms),
        ("css rules", css),
    ]
}

#[test]
fn normal_code_and_lists_never_fire() {
    for (what, text) in normal_texts() {
        assert_eq!(stream(&text), None, "{what} fired");
        assert_eq!(
            feed(&text, &[text.len()]),
            None,
            "{what} fired in one piece"
        );
    }
}

#[test]
fn the_window_stays_bounded() {
    let mut detector = TextRepetition::default();
    for i in 0..20_000 {
        assert!(detector.push(&format!("distinct line {i}\n")).is_none());
    }
    assert!(detector.folded.len() <= 2 * WINDOW);
    assert!(detector.raw.len() <= 2 * WINDOW * 4);
}

#[test]
fn calls_are_the_same_whatever_the_key_order_and_spacing() {
    assert_eq!(
        call_key("grep", r#"{"pattern": "x", "path": "."}"#),
        call_key("grep", r#"{"path":".","pattern":"x"}"#)
    );
    assert_ne!(
        call_key("grep", r#"{"pattern": "x"}"#),
        call_key("grep", r#"{"pattern": "y"}"#)
    );
    assert_ne!(
        call_key("grep", r#"{"pattern": "x"}"#),
        call_key("glob", r#"{"pattern": "x"}"#)
    );
    assert_eq!(call_key("grep", "not json "), call_key("grep", "not json"));
    let mut calls = AnswerCalls::default();
    assert!(!calls.is_repeat("read_file", r#"{"path": "a"}"#));
    assert!(!calls.is_repeat("read_file", r#"{"path": "b"}"#));
    assert!(calls.is_repeat("read_file", r#"{ "path" : "a" }"#));
}

#[test]
fn a_turn_recalls_results_until_something_changes_and_counts_repeats() {
    let mut turn = TurnCalls::default();
    assert_eq!(turn.recall("grep", r#"{"pattern":"x"}"#), None);
    turn.remember("grep", r#"{"pattern":"x"}"#, "src/a.rs:1: x", true);
    assert_eq!(
        turn.recall("grep", r#"{"pattern": "x"}"#),
        Some(("src/a.rs:1: x".to_owned(), true))
    );
    assert_eq!(turn.repeats(), 1);
    turn.forget();
    assert_eq!(turn.recall("grep", r#"{"pattern":"x"}"#), None);
    assert_eq!(turn.repeats(), 1);
    turn.remember("grep", r#"{"pattern":"x"}"#, "found", true);
    for _ in 1..MAX_REPEATED_CALLS {
        assert!(!turn.exhausted());
        turn.recall("grep", r#"{"pattern":"x"}"#);
    }
    assert!(turn.exhausted());
}

/// A line of code-like text; `id` makes it unique.
fn code_line() -> impl Strategy<Value = String> {
    (
        "[ ]{0,8}",
        prop::sample::select(vec![
            "let x = ",
            "}",
            "fn f(",
            "assert_eq!(",
            "// ",
            "- ",
            "| a | ",
            "return ",
            "",
        ]),
        "[a-z0-9_(){};,. ]{0,40}",
    )
        .prop_map(|(indent, head, body)| format!("{indent}{head}{body}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Text whose lines are all different (each carries its own number) never fires, however
    /// it is cut into pieces.
    #[test]
    fn distinct_lines_never_fire(
        lines in prop::collection::vec(code_line(), 1..200),
        pieces in prop::collection::vec(1usize..200, 1..8),
    ) {
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, line)| format!("{line} #{i}\n"))
            .collect();
        prop_assert_eq!(feed(&text, &pieces), None);
    }

    /// A block written over and over fires wherever the pieces are cut, and keeps the text
    /// before it and (about) one copy.
    #[test]
    fn a_repeated_block_fires_for_every_split(
        prefix in "[A-Za-z .,\n]{0,300}",
        block in "[A-Za-z][A-Za-z0-9 ,.:\n]{15,120}",
        pieces in prop::collection::vec(1usize..300, 1..8),
    ) {
        prop_assume!(block.chars().filter(|c| c.is_alphanumeric()).count() >= 8);
        let copies = (SHORT_SPAN / block.len()).max(MIN_COPIES) * 2 + 2;
        let text = format!("{prefix}{}", block.repeat(copies));
        let found = feed(&text, &pieces);
        prop_assert!(found.is_some(), "no loop found in {:?}", text);
        let (found, _) = found.unwrap();
        prop_assert!(found.keep <= prefix.len() + 2 * block.len() + 1, "kept {} of {:?}", found.keep, text);
        prop_assert!(text.is_char_boundary(found.keep));
        let same = feed(&text, &[text.len()]).map(|(found, _)| found.keep);
        prop_assert!(same.is_some());
    }
}
