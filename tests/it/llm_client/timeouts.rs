//! Silence from the server ends in a timeout, and a stream the caller drops reaches the server
//! as a disconnect.

use std::time::Duration;

use futures::StreamExt;
use punie::llm::{ChatModel, LlmError, ModelEvent, ModelSpec, OpenAiModel, Timeouts};

use super::{hello, model_for};
use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Reply};
use crate::support::model_client::collect;

#[tokio::test]
async fn dropping_the_stream_aborts_the_request() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Hello there, friend").hang_after(3));
    let mut stream = model_for(&server).stream(hello()).await.unwrap();
    assert!(matches!(stream.next().await, Some(Ok(ModelEvent::Text(_)))));
    assert!(matches!(stream.next().await, Some(Ok(ModelEvent::Text(_)))));
    assert_eq!(server.disconnects(), 0);
    drop(stream);
    assert!(
        server.wait_for_disconnects(1, Duration::from_secs(5)).await,
        "the server did not see the client go away"
    );
    assert_eq!(server.completed(), 0);
}

#[tokio::test]
async fn dropping_a_slow_stream_aborts_the_request() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Hello there, friend").chunk_delay(Duration::from_millis(50)));
    let mut stream = model_for(&server).stream(hello()).await.unwrap();
    assert!(matches!(stream.next().await, Some(Ok(ModelEvent::Text(_)))));
    drop(stream);
    assert!(server.wait_for_disconnects(1, Duration::from_secs(5)).await);
    assert_eq!(server.completed(), 0);
}

fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_millis(500),
        idle: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn silence_before_the_first_byte_times_out() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("never").hang_after(0));
    let model = OpenAiModel::new(
        ModelSpec::parse(&server.spec_for(FAKE_MODEL)).unwrap(),
        None,
    )
    .with_timeouts(short_timeouts());
    let started = std::time::Instant::now();
    let error = match model.stream(hello()).await {
        Ok(stream) => collect(stream).await.expect_err("a timeout").1,
        Err(error) => error,
    };
    assert!(started.elapsed() < Duration::from_secs(3));
    let LlmError::Timeout { phase, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(phase.contains("first byte"), "{error}");
    assert!(server.wait_for_disconnects(1, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn silence_between_chunks_times_out() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Hello there, friend").hang_after(2));
    let model = OpenAiModel::new(
        ModelSpec::parse(&server.spec_for(FAKE_MODEL)).unwrap(),
        None,
    )
    .with_timeouts(short_timeouts());
    assert_eq!(model.timeouts(), short_timeouts());
    let (answer, error) = collect(model.stream(hello()).await.unwrap())
        .await
        .expect_err("a timeout");
    assert!(!answer.text.is_empty());
    let LlmError::Timeout { phase, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(phase.contains("next chunk"), "{error}");
}

#[tokio::test]
async fn slow_chunks_within_the_idle_timeout_are_fine() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Hello there").chunk_delay(Duration::from_millis(100)));
    let model = OpenAiModel::new(
        ModelSpec::parse(&server.spec_for(FAKE_MODEL)).unwrap(),
        None,
    )
    .with_timeouts(short_timeouts());
    let answer = collect(model.stream(hello()).await.unwrap()).await.unwrap();
    assert_eq!(answer.text, "Hello there");
}
