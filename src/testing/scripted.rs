//! A model that plays a script instead of calling a server, and records what it was asked.

use std::collections::VecDeque;
use std::sync::Mutex;

use futures::future::BoxFuture;

use crate::llm::{
    ChatModel, ChatRequest, FinishReason, LlmError, ModelEvent, ModelStream, ToolCall,
};

/// Plays scripted model answers, one per request, and records every request.
///
/// When the script runs out, requests fail with [`LlmError::Backend`].
#[derive(Debug, Default)]
pub struct ScriptedModel {
    replies: Mutex<VecDeque<Result<Vec<ModelEvent>, String>>>,
    requests: Mutex<Vec<ChatRequest>>,
    calls: Mutex<u64>,
    context_size: Option<u32>,
}

impl ScriptedModel {
    /// An empty script.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports this context window, as a server would.
    pub fn with_context_size(mut self, tokens: u32) -> Self {
        self.context_size = Some(tokens);
        self
    }

    /// Queues an answer made of these events, as a stream would deliver them. A
    /// [`ModelEvent::Finished`] is added at the end if missing.
    pub fn reply(&self, mut events: Vec<ModelEvent>) -> &Self {
        if !matches!(events.last(), Some(ModelEvent::Finished(_))) {
            let calls = events.iter().any(|e| matches!(e, ModelEvent::ToolCall(_)));
            events.push(ModelEvent::Finished(if calls {
                FinishReason::ToolCalls
            } else {
                FinishReason::Stop
            }));
        }
        lock(&self.replies).push_back(Ok(events));
        self
    }

    /// Queues a text answer.
    pub fn text(&self, text: &str) -> &Self {
        self.reply(vec![ModelEvent::Text(text.to_owned())])
    }

    /// Queues an answer that thinks, then says `text`.
    pub fn thought_then_text(&self, thought: &str, text: &str) -> &Self {
        self.reply(vec![
            ModelEvent::Thought(thought.to_owned()),
            ModelEvent::Text(text.to_owned()),
        ])
    }

    /// Queues an answer that calls one tool.
    pub fn tool_call(&self, name: &str, arguments: serde_json::Value) -> &Self {
        let id = {
            let mut calls = lock(&self.calls);
            *calls += 1;
            format!("scripted_call_{calls}")
        };
        self.reply(vec![ModelEvent::ToolCall(ToolCall {
            id,
            name: name.to_owned(),
            arguments: arguments.to_string(),
        })])
    }

    /// Queues a failed request.
    pub fn fail(&self, message: &str) -> &Self {
        lock(&self.replies).push_back(Err(message.to_owned()));
        self
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }

    /// How many queued answers are left.
    pub fn remaining(&self) -> usize {
        lock(&self.replies).len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl ChatModel for ScriptedModel {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        lock(&self.requests).push(request);
        let reply = lock(&self.replies).pop_front();
        Box::pin(async move {
            match reply {
                Some(Ok(events)) => {
                    let stream: ModelStream =
                        Box::pin(futures::stream::iter(events.into_iter().map(Ok)));
                    Ok(stream)
                }
                Some(Err(message)) => Err(LlmError::Backend { message }),
                None => Err(LlmError::Backend {
                    message: "the scripted model has no more answers".to_owned(),
                }),
            }
        })
    }

    fn describe(&self) -> String {
        "scripted model".to_owned()
    }

    fn context_size(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(async move { self.context_size })
    }
}
