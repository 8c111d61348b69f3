//! One answer bigger than the context window (a small model looping until it is stopped) must
//! not make the session unusable: the next prompt still reaches the model, with the long answer
//! shortened to its head and tail, whether it finished or was cancelled part-way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use punie::agent::{Agent, StopReason};
use punie::llm::{
    ChatModel, ChatRequest, FinishReason, LlmError, Message, ModelEvent, ModelStream,
};
use punie::testing::{FakeEditor, ScriptedModel};

/// Punie's default window when the server does not say (8,192 tokens).
const WINDOW: usize = 8192;

/// What a looping small model writes: 20,000 characters, recognisable at both ends.
fn rambling_answer() -> String {
    let mut text = String::from("START OF THE ANSWER\n");
    let mut i = 0;
    while text.len() < 20_000 - 40 {
        text.push_str(&format!("I will now repeat myself, line {i}.\n"));
        i += 1;
    }
    text.push_str("END OF THE ANSWER\n");
    text
}

/// The assistant texts a request carries.
fn assistant_texts(request: &ChatRequest) -> Vec<String> {
    request
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::Assistant {
                content: Some(text),
                ..
            } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// Bytes of the request's messages; Punie estimates at most 3 bytes per token.
fn message_bytes(request: &ChatRequest) -> usize {
    request
        .messages
        .iter()
        .map(|m| match m {
            Message::System { content } | Message::User { content } => content.len(),
            Message::Assistant { content, .. } => content.as_ref().map_or(0, String::len),
            Message::Tool { content, .. } => content.len(),
            _ => 0,
        })
        .sum()
}

#[tokio::test]
async fn a_finished_answer_larger_than_the_window_does_not_block_the_next_prompt() {
    let model = Arc::new(ScriptedModel::new());
    let long = rambling_answer();
    model.text(&long).text("Here is a short answer.");
    let agent = Agent::builder().model(model.clone()).build().unwrap();
    let editor = FakeEditor::new();
    let connection = editor.connect(agent).await.unwrap();
    let session = connection.new_session("/project").await.unwrap();

    let stop = connection.prompt(&session, "explain").await.unwrap();
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(
        editor.message_text(),
        long,
        "the person saw the whole answer"
    );

    let stop = connection
        .prompt(&session, "now briefly")
        .await
        .expect("the second prompt works");
    assert_eq!(stop, StopReason::EndTurn);
    let requests = model.requests();
    assert_eq!(requests.len(), 2, "the second prompt reached the model");
    let second = &requests[1];
    let answers = assistant_texts(second);
    assert_eq!(answers.len(), 1, "{answers:?}");
    let kept = &answers[0];
    assert!(
        kept.starts_with("START OF THE ANSWER") && kept.trim_end().ends_with("END OF THE ANSWER"),
        "head and tail kept: {kept}"
    );
    assert!(
        kept.len() < long.len() / 2,
        "{} characters kept",
        kept.len()
    );
    assert!(
        kept.contains("characters") && kept.contains("cut"),
        "{kept}"
    );
    assert!(
        message_bytes(second) / 3 + second.max_tokens.unwrap() as usize <= WINDOW,
        "the request fits the window: {} bytes, max_tokens {}",
        message_bytes(second),
        second.max_tokens.unwrap()
    );
    assert!(
        matches!(second.messages.last(), Some(Message::User { content }) if content == "now briefly")
    );
}

/// Streams a long answer in pieces, then hangs until cancelled; later requests answer briefly.
#[derive(Default)]
struct Rambler {
    requests: Mutex<Vec<ChatRequest>>,
}

impl ChatModel for Rambler {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        let first = {
            let mut requests = self.requests.lock().unwrap();
            requests.push(request);
            requests.len() == 1
        };
        Box::pin(async move {
            let stream: ModelStream = if first {
                let text = rambling_answer();
                let pieces: Vec<Result<ModelEvent, LlmError>> = text
                    .as_bytes()
                    .chunks(1000)
                    .map(|piece| Ok(ModelEvent::Text(String::from_utf8(piece.to_vec()).unwrap())))
                    .collect();
                Box::pin(futures::StreamExt::chain(
                    futures::stream::iter(pieces),
                    futures::stream::pending(),
                ))
            } else {
                Box::pin(futures::stream::iter([
                    Ok(ModelEvent::Text("Short, as asked.".to_owned())),
                    Ok(ModelEvent::Finished(FinishReason::Stop)),
                ]))
            };
            Ok(stream)
        })
    }

    fn describe(&self) -> String {
        "rambler".to_owned()
    }

    fn context_size(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(async { None })
    }
}

#[tokio::test]
async fn a_long_answer_cancelled_part_way_does_not_block_the_next_prompt() {
    let model = Arc::new(Rambler::default());
    let agent = Agent::builder().model(model.clone()).build().unwrap();
    let editor = FakeEditor::new();
    let connection = editor.connect(agent).await.unwrap();
    let session = connection.new_session("/project").await.unwrap();

    let cancel = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while editor.message_text().len() < 19_000 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the answer never streamed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        connection.cancel(&session).unwrap();
    };
    let (stop, ()) = tokio::join!(connection.prompt(&session, "explain"), cancel);
    assert_eq!(stop.unwrap(), StopReason::Cancelled);

    let stop = connection
        .prompt(&session, "now briefly")
        .await
        .expect("the second prompt works");
    assert_eq!(stop, StopReason::EndTurn);
    let requests = model.requests.lock().unwrap();
    assert_eq!(requests.len(), 2, "the second prompt reached the model");
    let answers = assistant_texts(&requests[1]);
    assert_eq!(answers.len(), 1, "{answers:?}");
    let kept = &answers[0];
    assert!(kept.starts_with("START OF THE ANSWER"), "{kept}");
    assert!(
        kept.contains("interrupted"),
        "marked as interrupted: {kept}"
    );
    assert!(kept.len() < 19_000 / 2, "{} characters kept", kept.len());
    assert!(
        message_bytes(&requests[1]) / 3 + requests[1].max_tokens.unwrap() as usize <= WINDOW,
        "the request fits the window"
    );
}
