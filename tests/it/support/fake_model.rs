//! A fake OpenAI-compatible model server for end-to-end tests: it answers
//! `POST /v1/chat/completions` with scripted replies (recorded llama.cpp exchanges, hand-made
//! streams, errors), lists models on `GET /v1/models`, answers any other route it is given
//! (llama.cpp's `/props`, LM Studio's `/api/v0/models/…`, Ollama's `/api/show`), records what it
//! was sent, and notices when a client walks away from a streaming answer.
//!
//! It runs on the test's tokio runtime (bound to `127.0.0.1:0`) and stops when dropped. A test
//! that blocks its thread (waiting on a child process synchronously, say) must use a
//! multi-threaded runtime: `#[tokio::test(flavor = "multi_thread")]`.
//!
//! ```ignore
//! let server = FakeModelServer::start().await;
//! server.push(Reply::text("Hello!"));
//! server.push(Reply::tool_call("read_file", json!({"path": "src/main.rs"})));
//! // point the agent at server.base_url() …
//! assert_eq!(server.requests().len(), 2);
//! ```

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The model the fake server lists unless told otherwise.
pub const FAKE_MODEL: &str = "fake-model";

/// A running fake server. Dropping it stops the server.
pub struct FakeModelServer {
    address: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    models: Mutex<Vec<String>>,
    models_reply: Mutex<Option<Reply>>,
    routes: Mutex<HashMap<(String, String), Reply>>,
    route_requests: Mutex<Vec<(String, String, Value)>>,
    model_list_requests: AtomicUsize,
    disconnects: AtomicUsize,
    completed: AtomicUsize,
    changed: Notify,
}

struct RecordedRequest {
    body: Value,
    raw: Bytes,
    authorization: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not hide its own failure behind ours.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeModelServer {
    /// Starts a server listing [`FAKE_MODEL`], with no replies queued.
    pub async fn start() -> Self {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// [`FakeModelServer::start`] on a chosen address (to play a server that comes up late).
    pub async fn start_at(address: SocketAddr) -> Self {
        Self::start_at_with(address, Vec::new()).await
    }

    /// [`FakeModelServer::start_at`] with `replies` queued before it listens, so that a client
    /// already knocking gets them.
    pub async fn start_at_with(address: SocketAddr, replies: Vec<Reply>) -> Self {
        let shared = Arc::new(Shared {
            replies: Mutex::new(replies.into()),
            requests: Mutex::new(Vec::new()),
            models: Mutex::new(vec![FAKE_MODEL.to_owned()]),
            models_reply: Mutex::new(None),
            routes: Mutex::new(HashMap::new()),
            route_requests: Mutex::new(Vec::new()),
            model_list_requests: AtomicUsize::new(0),
            disconnects: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            changed: Notify::new(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .fallback(other_route)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .expect("bind the fake model server");
        let address = listener.local_addr().expect("fake server address");
        let task = tokio::spawn(async move {
            // Ends only when the task is aborted (the server is dropped).
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            shared,
            task,
        }
    }

    /// The OpenAI-compatible base URL, like `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// A model spec naming `model` on this server: `http://127.0.0.1:PORT/v1/MODEL`.
    pub fn spec_for(&self, model: &str) -> String {
        format!("{}/{model}", self.base_url())
    }

    /// Queues the reply to the next chat-completion request (replies are used in order; with
    /// none left the server answers 500 with a llama.cpp-shaped error).
    pub fn push(&self, reply: Reply) -> &Self {
        lock(&self.shared.replies).push_back(reply);
        self
    }

    /// How many queued replies have not been used yet.
    pub fn remaining(&self) -> usize {
        lock(&self.shared.replies).len()
    }

    /// The models `GET /v1/models` lists from now on (may be empty).
    pub fn set_models(&self, models: Vec<String>) {
        *lock(&self.shared.models) = models;
    }

    /// What `GET /v1/models` answers from now on, instead of the list of [`set_models`]
    /// (e.g. a recorded `01_models.http`, or an error).
    ///
    /// [`set_models`]: FakeModelServer::set_models
    pub fn set_models_reply(&self, reply: Reply) {
        *lock(&self.shared.models_reply) = Some(reply);
    }

    /// Answers `method path` (e.g. `"GET", "/props"`) with `reply`, every time it is asked;
    /// unknown routes answer 404.
    pub fn route(&self, method: &str, path: &str, reply: Reply) -> &Self {
        lock(&self.shared.routes).insert((method.to_ascii_uppercase(), path.to_owned()), reply);
        self
    }

    /// Answers llama.cpp's `GET /props` saying whether the model sees images
    /// (`modalities.vision`: true when llama-server runs with a multimodal projector).
    pub fn sees(&self, vision: bool) -> &Self {
        self.route(
            "GET",
            "/props",
            Reply::json(json!({ "modalities": { "vision": vision, "audio": false } })),
        )
    }

    /// The requests made to routes other than chat completions and the model list, in order:
    /// method, path, and JSON body (`null` when there was none).
    pub fn route_requests(&self) -> Vec<(String, String, Value)> {
        lock(&self.shared.route_requests).clone()
    }

    /// The JSON bodies of the chat-completion requests received so far, in order (a body that
    /// was not JSON is recorded as a JSON string).
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.shared.requests)
            .iter()
            .map(|request| request.body.clone())
            .collect()
    }

    /// The bodies of the chat-completion requests received so far, byte for byte as sent.
    pub fn raw_requests(&self) -> Vec<Bytes> {
        lock(&self.shared.requests)
            .iter()
            .map(|request| request.raw.clone())
            .collect()
    }

    /// The `Authorization` header of each chat-completion request received so far.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        lock(&self.shared.requests)
            .iter()
            .map(|request| request.authorization.clone())
            .collect()
    }

    /// How many times `GET /v1/models` was asked.
    pub fn model_list_requests(&self) -> usize {
        self.shared.model_list_requests.load(Ordering::SeqCst)
    }

    /// How many answers the client abandoned before their end (the connection closed, or the
    /// response body was dropped, while the server still had something to send).
    pub fn disconnects(&self) -> usize {
        self.shared.disconnects.load(Ordering::SeqCst)
    }

    /// How many answers were sent to their end.
    pub fn completed(&self) -> usize {
        self.shared.completed.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` answers were abandoned; `false` if that did not happen
    /// within `within`.
    pub async fn wait_for_disconnects(&self, count: usize, within: Duration) -> bool {
        self.wait_until(within, || self.disconnects() >= count)
            .await
    }

    /// Waits until at least `count` chat-completion requests arrived; `false` if that did not
    /// happen within `within`.
    pub async fn wait_for_requests(&self, count: usize, within: Duration) -> bool {
        self.wait_until(within, || lock(&self.shared.requests).len() >= count)
            .await
    }

    async fn wait_until(&self, within: Duration, done: impl Fn() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.shared.changed.notified();
            if done() {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done();
            }
        }
    }
}

impl Drop for FakeModelServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One scripted answer: a status, a content type, and a body sent as a series of writes.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    chunks: Vec<Bytes>,
    chunk_delay: Duration,
    hang_after: Option<usize>,
    cut_after: Option<usize>,
}

/// One part of a generated (llama.cpp-shaped) streaming answer, for [`Reply::parts`].
#[derive(Clone, Debug)]
pub enum Part {
    /// Reasoning, streamed as `delta.reasoning_content`.
    Thought(String),
    /// Answer text, streamed as `delta.content`.
    Text(String),
    /// A tool call: its first delta carries index, id, name and the start of the arguments,
    /// the next ones argument fragments.
    ToolCall {
        /// The call id (one is made up when `None`).
        id: Option<String>,
        /// The tool's name.
        name: String,
        /// The arguments' JSON text.
        arguments: String,
    },
}

impl Part {
    /// Reasoning text.
    pub fn thought(text: &str) -> Self {
        Part::Thought(text.to_owned())
    }

    /// Answer text.
    pub fn text(text: &str) -> Self {
        Part::Text(text.to_owned())
    }

    /// A tool call; `arguments` is a `serde_json::Value` or JSON text.
    pub fn tool_call(name: &str, arguments: impl ToString) -> Self {
        Part::ToolCall {
            id: None,
            name: name.to_owned(),
            arguments: arguments.to_string(),
        }
    }

    /// A tool call with a chosen id.
    pub fn tool_call_with_id(id: &str, name: &str, arguments: impl ToString) -> Self {
        Part::ToolCall {
            id: Some(id.to_owned()),
            name: name.to_owned(),
            arguments: arguments.to_string(),
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl Reply {
    fn new(status: u16, content_type: &str, chunks: Vec<Bytes>) -> Self {
        Self {
            status,
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            chunks,
            chunk_delay: Duration::ZERO,
            hang_after: None,
            cut_after: None,
        }
    }

    /// Replays a recorded `.http` exchange (status line, headers, blank line, body): its
    /// status, content type, `Retry-After` and body bytes exactly. Recorded SSE bodies are sent
    /// one event per write; `*_RAWWIRE` bodies (still chunk-framed) one recorded HTTP chunk per
    /// write, so several events can share a read as they did on the wire.
    pub fn fixture(http: &str) -> Self {
        let (head, body) = http
            .split_once("\r\n\r\n")
            .or_else(|| http.split_once("\n\n"))
            .expect("an .http fixture has a blank line after its headers");
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .expect("an .http fixture starts with a status line");
        let mut content_type = "application/octet-stream".to_owned();
        let mut chunked = false;
        let mut headers = Vec::new();
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-type") {
                content_type = value.to_owned();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("retry-after") {
                headers.push(("retry-after".to_owned(), value.to_owned()));
            }
        }
        let body = body.as_bytes();
        let chunks = if chunked && starts_with_chunk_size(body) {
            decode_chunked(body)
        } else if content_type.starts_with("text/event-stream") {
            split_events(body)
        } else {
            vec![Bytes::copy_from_slice(body)]
        };
        let mut reply = Self::new(status, &content_type, chunks);
        reply.headers = headers;
        reply
    }

    /// A raw SSE body (such as a `.sse` fixture file), sent one event per write.
    pub fn sse_body(body: &str) -> Self {
        Self::new(200, "text/event-stream", split_events(body.as_bytes()))
    }

    /// A streaming answer sent in exactly these writes (to cut a body at chosen bytes).
    pub fn sse_writes(writes: Vec<Vec<u8>>) -> Self {
        Self::new(
            200,
            "text/event-stream",
            writes.into_iter().map(Bytes::from).collect(),
        )
    }

    /// A `200` JSON answer (for the routes of [`FakeModelServer::route`]).
    pub fn json(body: Value) -> Self {
        Self::error(200, body)
    }

    /// Each value framed as `data: JSON\n\n`, then `data: [DONE]\n\n`, one write each.
    pub fn sse_events(events: Vec<Value>) -> Self {
        let mut chunks: Vec<Bytes> = events
            .iter()
            .map(|event| Bytes::from(format!("data: {event}\n\n")))
            .collect();
        chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
        Self::new(200, "text/event-stream", chunks)
    }

    /// A llama.cpp-shaped streaming answer of `text`, finishing with `stop`.
    pub fn text(text: &str) -> Self {
        Self::parts(vec![Part::text(text)])
    }

    /// A llama.cpp-shaped streaming answer with one tool call, finishing with `tool_calls`;
    /// `arguments` is a `serde_json::Value` or JSON text.
    pub fn tool_call(name: &str, arguments: impl ToString) -> Self {
        Self::parts(vec![Part::tool_call(name, arguments)])
    }

    /// A llama.cpp-shaped streaming answer made of `parts`, finishing with `tool_calls` when
    /// there is a call and `stop` otherwise.
    pub fn parts(parts: Vec<Part>) -> Self {
        let has_calls = parts
            .iter()
            .any(|part| matches!(part, Part::ToolCall { .. }));
        Self::parts_with_finish(parts, if has_calls { "tool_calls" } else { "stop" })
    }

    /// A llama.cpp-shaped streaming answer made of `parts`, finishing with `finish_reason`:
    /// a role delta, the parts cut in a few deltas each, the finish chunk, a usage chunk with
    /// `choices: []`, and `[DONE]`.
    pub fn parts_with_finish(parts: Vec<Part>, finish_reason: &str) -> Self {
        let stream_id = format!("chatcmpl-fake{}", next_id());
        let chunk = |delta: Value, finish: Option<&str>| {
            json!({
                "choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
                "created": 1_795_246_534u64,
                "id": stream_id,
                "model": FAKE_MODEL,
                "system_fingerprint": "b0-fake",
                "object": "chat.completion.chunk",
            })
        };
        let mut events = vec![chunk(json!({"role": "assistant", "content": null}), None)];
        let mut pieces = 0;
        let mut call_index = 0;
        for part in parts {
            match part {
                Part::Thought(text) => {
                    for piece in pieces_of(&text) {
                        events.push(chunk(json!({"reasoning_content": piece}), None));
                        pieces += 1;
                    }
                }
                Part::Text(text) => {
                    for piece in pieces_of(&text) {
                        events.push(chunk(json!({"content": piece}), None));
                        pieces += 1;
                    }
                }
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } => {
                    let id = id.unwrap_or_else(|| format!("call_fake{}", next_id()));
                    let mut fragments = pieces_of(&arguments).into_iter();
                    let first = fragments.next().unwrap_or_default();
                    events.push(chunk(
                        json!({"tool_calls": [{
                            "index": call_index, "id": id, "type": "function",
                            "function": {"name": name, "arguments": first},
                        }]}),
                        None,
                    ));
                    for fragment in fragments {
                        events.push(chunk(
                            json!({"tool_calls": [{"index": call_index, "function": {"arguments": fragment}}]}),
                            None,
                        ));
                    }
                    call_index += 1;
                    pieces += 3;
                }
            }
        }
        events.push(chunk(json!({}), Some(finish_reason)));
        events.push(json!({
            "choices": [],
            "created": 1_795_246_534u64,
            "id": stream_id,
            "model": FAKE_MODEL,
            "system_fingerprint": "b0-fake",
            "object": "chat.completion.chunk",
            "usage": {"completion_tokens": pieces, "prompt_tokens": 10, "total_tokens": pieces + 10},
            "timings": {"prompt_n": 10, "predicted_n": pieces},
        }));
        Self::sse_events(events)
    }

    /// An error answer with a JSON body, e.g.
    /// `Reply::error(400, json!({"error": {"code": 400, "message": "…", "type": "…"}}))`.
    pub fn error(status: u16, body: Value) -> Self {
        Self::new(
            status,
            "application/json; charset=utf-8",
            vec![Bytes::from(body.to_string())],
        )
    }

    /// Any status, content type and body, sent in one write.
    pub fn raw(status: u16, content_type: &str, body: &str) -> Self {
        Self::new(status, content_type, vec![Bytes::from(body.to_owned())])
    }

    /// Waits `delay` before each write.
    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// Sends the first `writes` writes, then keeps the connection open forever without sending
    /// more (for cancellation and timeout tests).
    pub fn hang_after(mut self, writes: usize) -> Self {
        self.hang_after = Some(writes);
        self
    }

    /// Sends the first `writes` writes, then ends the response (a stream cut short).
    pub fn cut_after(mut self, writes: usize) -> Self {
        self.cut_after = Some(writes);
        self
    }

    /// How many writes the body is sent in.
    pub fn writes(&self) -> usize {
        self.chunks.len()
    }
}

/// `text` cut into at most three pieces, on character boundaries.
fn pieces_of(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(3);
    chars
        .chunks(size)
        .map(|piece| piece.iter().collect())
        .collect()
}

fn starts_with_chunk_size(body: &[u8]) -> bool {
    let Some(end) = body.windows(2).position(|pair| pair == b"\r\n") else {
        return false;
    };
    let size = body[..end].split(|&b| b == b';').next().unwrap_or_default();
    !size.is_empty() && size.iter().all(u8::is_ascii_hexdigit)
}

/// The chunks of a body still in HTTP/1.1 chunked framing.
fn decode_chunked(mut body: &[u8]) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    loop {
        let end = body
            .windows(2)
            .position(|pair| pair == b"\r\n")
            .expect("a chunk-size line");
        let size_text = std::str::from_utf8(&body[..end]).expect("an ASCII chunk size");
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).expect("a hexadecimal chunk size");
        body = &body[end + 2..];
        if size == 0 {
            return chunks;
        }
        chunks.push(Bytes::copy_from_slice(&body[..size]));
        body = body[size..]
            .strip_prefix(b"\r\n")
            .expect("CRLF after chunk data");
        if body.is_empty() {
            // The recording stopped before the terminating zero-size chunk.
            return chunks;
        }
    }
}

/// An SSE body cut after each blank line (`\n\n` or `\r\n\r\n`).
fn split_events(body: &[u8]) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < body.len() {
        let end = if body[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if body[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        };
        match end {
            Some(end) => {
                chunks.push(Bytes::copy_from_slice(&body[start..end]));
                start = end;
                i = end;
            }
            None => i += 1,
        }
    }
    if start < body.len() {
        chunks.push(Bytes::copy_from_slice(&body[start..]));
    }
    chunks
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = body;
    let body = serde_json::from_slice(&raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let number = {
        let mut requests = lock(&shared.requests);
        requests.push(RecordedRequest {
            body,
            raw,
            authorization,
        });
        requests.len()
    };
    shared.changed.notify_waiters();
    let reply = lock(&shared.replies).pop_front();
    let reply = reply.unwrap_or_else(|| {
        Reply::error(
            500,
            json!({"error": {
                "code": 500,
                "message": format!("fake model server: the script is exhausted (no reply queued for request #{number})"),
                "type": "server_error",
            }}),
        )
    });
    respond(reply, Some(shared))
}

/// Counts an answer as completed when its last write went out, or as abandoned when the
/// server drops the body before that (hyper does when the client goes away).
struct BodyGuard {
    /// `None` for answers that are not counted (model lists, other routes).
    shared: Option<Arc<Shared>>,
    finished: bool,
}

impl BodyGuard {
    fn complete(mut self) {
        self.finished = true;
    }
}

impl Drop for BodyGuard {
    fn drop(&mut self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let counter = if self.finished {
            &shared.completed
        } else {
            &shared.disconnects
        };
        counter.fetch_add(1, Ordering::SeqCst);
        shared.changed.notify_waiters();
    }
}

/// The response playing `reply`; `shared`, when given, counts it as completed or abandoned.
fn respond(reply: Reply, shared: Option<Arc<Shared>>) -> Response {
    let Reply {
        status,
        content_type,
        headers,
        chunks,
        chunk_delay,
        hang_after,
        cut_after,
    } = reply;
    let limit = cut_after.unwrap_or(usize::MAX).min(chunks.len());
    let state = (
        chunks.into_iter().take(limit).collect::<VecDeque<_>>(),
        0usize,
        BodyGuard {
            shared,
            finished: false,
        },
    );
    let body = futures::stream::unfold(state, move |(mut chunks, sent, guard)| async move {
        if hang_after.is_some_and(|after| sent >= after) {
            std::future::pending::<()>().await;
        }
        if !chunk_delay.is_zero() {
            tokio::time::sleep(chunk_delay).await;
        }
        match chunks.pop_front() {
            Some(chunk) => Some((Ok::<_, Infallible>(chunk), (chunks, sent + 1, guard))),
            None => {
                guard.complete();
                None
            }
        }
    });
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).expect("a valid HTTP status"))
        .header(header::CONTENT_TYPE, content_type);
    for (name, value) in headers {
        response = response.header(
            HeaderName::try_from(name).expect("a valid header name"),
            HeaderValue::try_from(value).expect("a valid header value"),
        );
    }
    response
        .body(Body::from_stream(body))
        .expect("a valid response")
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    shared.model_list_requests.fetch_add(1, Ordering::SeqCst);
    let reply = lock(&shared.models_reply).clone();
    if let Some(reply) = reply {
        return respond(reply, None);
    }
    let data: Vec<Value> = lock(&shared.models)
        .iter()
        .map(|id| json!({"id": id, "object": "model", "owned_by": "punie-tests"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn other_route(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    lock(&shared.route_requests).push((method.as_str().to_owned(), path.clone(), body));
    let reply = lock(&shared.routes)
        .get(&(method.as_str().to_owned(), path))
        .cloned();
    match reply {
        Some(reply) => respond(reply, None),
        None => not_found(),
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            json!({"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}),
        ),
    )
        .into_response()
}
