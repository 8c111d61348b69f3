//! MCP servers as tool providers, against real `rmcp` servers: over stdio (this test binary
//! re-executed as the server, see [`mcp_test_server`]) and over streamable HTTP (in-process).

use std::sync::Arc;
use std::time::{Duration, Instant};

use punie::testing::tool_context;
use punie::tools::mcp::{McpConnections, McpServerConfig};
use punie::tools::{Tool, ToolContext, ToolError};
use punie::workspace::ToolKind;
use punie::workspace::local::{LocalOptions, local_workspace};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde_json::{Value, json};

/// Set in the environment of the re-executed test binary to make it an MCP server.
pub(crate) const SERVER_ENV: &str = "PUNIE_TEST_MCP_SERVER";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct AddArgs {
    /// The first number.
    a: i64,
    /// The second number.
    b: i64,
}

#[derive(Debug, Clone)]
struct TestServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl TestServer {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Add two numbers",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn add(&self, Parameters(AddArgs { a, b }): Parameters<AddArgs>) -> String {
        (a + b).to_string()
    }

    #[tool(description = "Always fails")]
    fn fail(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::error(vec![ContentBlock::text(
            "it failed on purpose",
        )]))
    }

    #[tool(description = "Returns a caption and a picture")]
    fn picture(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![
            ContentBlock::text("a tiny picture"),
            ContentBlock::image("YWJj", "image/png"),
        ]))
    }

    #[tool(description = "Takes a minute")]
    async fn slow(&self) -> String {
        tokio::time::sleep(Duration::from_secs(60)).await;
        "done".to_owned()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// Not a test: the MCP server the other tests start, when this binary runs with [`SERVER_ENV`].
/// (libtest's own header line on stdout is skipped by the client as a non-JSON line.)
#[test]
fn mcp_test_server() {
    if std::env::var(SERVER_ENV).as_deref() != Ok("1") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = TestServer::new()
            .serve(rmcp::transport::stdio())
            .await
            .unwrap();
        let _ = server.waiting().await;
    });
}

pub(crate) fn stdio_server(name: &str) -> McpServerConfig {
    McpServerConfig::Stdio {
        name: name.to_owned(),
        command: std::env::current_exe().unwrap(),
        args: vec![
            "--exact".into(),
            crate::support::libtest_name(module_path!(), "mcp_test_server"),
            "--quiet".into(),
            "--test-threads".into(),
            "1".into(),
        ],
        env: vec![(SERVER_ENV.to_owned(), "1".to_owned())],
    }
}

/// A context for calling tools (MCP tools do not use the workspace).
fn context() -> (tempfile::TempDir, ToolContext) {
    let dir = tempfile::tempdir().unwrap();
    let workspace = local_workspace(dir.path().to_owned(), LocalOptions::default()).unwrap();
    let ctx = tool_context(workspace);
    (dir, ctx)
}

fn tool(connections: &McpConnections, name: &str) -> Arc<dyn Tool> {
    connections
        .tools()
        .into_iter()
        .find(|t| t.name() == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

async fn connect_one() -> McpConnections {
    let (connections, problems) =
        McpConnections::connect(vec![stdio_server("test")], CONNECT_TIMEOUT).await;
    assert!(problems.is_empty(), "{problems:?}");
    connections
}

/// Whether a process with this id still exists (a reaped child does not).
fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn failure(result: Result<punie::tools::ToolOutput, ToolError>) -> String {
    match result {
        Err(ToolError::Failed(message)) => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn tools_are_listed_with_their_schema_and_annotations() {
    let connections = connect_one().await;
    let mut names: Vec<String> = connections
        .tools()
        .iter()
        .map(|t| t.name().to_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["test__add", "test__fail", "test__picture", "test__slow"]
    );
    let add = tool(&connections, "test__add");
    assert_eq!(add.description(), "Add two numbers");
    let schema = add.parameters();
    assert_eq!(schema["type"], "object");
    assert_eq!(
        schema["properties"]["a"]["description"],
        "The first number."
    );
    assert_eq!(schema["required"], json!(["a", "b"]));
    // readOnlyHint: runs without asking.
    assert!(!add.needs_permission());
    assert_eq!(add.kind(), ToolKind::Read);
    let fail = tool(&connections, "test__fail");
    assert!(fail.needs_permission());
    assert_eq!(fail.kind(), ToolKind::Other);
    assert_eq!(fail.title(&json!({})), "fail (test)");
    connections.shutdown().await;
}

#[tokio::test]
async fn calls_round_trip_and_errors_map_to_tool_errors() {
    let connections = connect_one().await;
    let (_dir, ctx) = context();

    assert_eq!(
        tool(&connections, "test__add").provider(&ctx.workspace),
        "mcp"
    );
    let output = tool(&connections, "test__add")
        .call(json!({"a": 2, "b": 40}), &ctx)
        .await
        .unwrap();
    assert_eq!(output.text, "42");

    let message = failure(tool(&connections, "test__fail").call(json!({}), &ctx).await);
    assert_eq!(message, "it failed on purpose");

    // rmcp servers report arguments that do not fit as a tool error the model can act on.
    let message = failure(
        tool(&connections, "test__add")
            .call(json!({"a": "two"}), &ctx)
            .await,
    );
    assert!(message.contains("expected i64"), "{message}");

    let output = tool(&connections, "test__picture")
        .call(Value::Null, &ctx)
        .await
        .unwrap();
    assert_eq!(output.text, "a tiny picture\n[image: image/png, 3 bytes]");
    connections.shutdown().await;
}

#[tokio::test]
async fn a_broken_server_is_a_problem_and_the_others_still_connect() {
    let servers = vec![
        McpServerConfig::Stdio {
            name: "missing".to_owned(),
            command: "/nonexistent/punie-mcp-server".into(),
            args: Vec::new(),
            env: Vec::new(),
        },
        stdio_server("test"),
        McpServerConfig::Stdio {
            name: "quitter".to_owned(),
            command: "sh".into(),
            args: vec![
                "-c".into(),
                "echo 'cannot start: no config' >&2; exit 3".into(),
            ],
            env: Vec::new(),
        },
        McpServerConfig::Sse {
            name: "legacy".to_owned(),
            url: "http://127.0.0.1:9/sse".to_owned(),
            headers: Vec::new(),
        },
    ];
    let started = Instant::now();
    let (connections, problems) = McpConnections::connect(servers, CONNECT_TIMEOUT).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(connections.servers(), ["test"]);
    assert_eq!(connections.tools().len(), 4);

    let reasons: Vec<(String, String)> = problems
        .iter()
        .map(|p| (p.server.clone(), p.reason.clone()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0].0, "missing");
    assert!(reasons[0].1.contains("was not found"), "{}", reasons[0].1);
    assert_eq!(reasons[1].0, "quitter");
    assert!(reasons[1].1.contains("exit code 3"), "{}", reasons[1].1);
    assert!(
        reasons[1].1.contains("cannot start: no config"),
        "{}",
        reasons[1].1
    );
    assert_eq!(reasons[2].0, "legacy");
    assert!(reasons[2].1.contains("not supported"), "{}", reasons[2].1);
    assert!(
        problems[0]
            .to_string()
            .starts_with("MCP server `missing`: ")
    );
    connections.shutdown().await;
}

#[tokio::test]
async fn a_server_that_does_not_answer_times_out() {
    // A distinctive duration, to find the process afterwards.
    let servers = vec![McpServerConfig::Stdio {
        name: "silent".to_owned(),
        command: "sleep".into(),
        args: vec!["29.4217".into()],
        env: Vec::new(),
    }];
    let started = Instant::now();
    let (connections, problems) =
        McpConnections::connect(servers, Duration::from_millis(500)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(connections.servers().is_empty());
    assert!(problems[0].reason.contains("within 0.5 s"), "{problems:?}");
    // The abandoned process was killed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while processes_with_arg("29.4217") > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(processes_with_arg("29.4217"), 0);
}

/// How many processes have `arg` among their arguments.
fn processes_with_arg(arg: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .filter(|cmdline| {
            cmdline
                .split(|&b| b == 0)
                .any(|part| part == arg.as_bytes())
        })
        .count()
}

#[tokio::test]
async fn shutdown_leaves_no_process() {
    let connections = connect_one().await;
    let processes = connections.processes();
    let [(name, pid)] = &processes[..] else {
        panic!("one process expected");
    };
    let pid = *pid;
    assert_eq!(name, "test");
    assert!(process_exists(pid));
    let started = Instant::now();
    connections.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!process_exists(pid), "server {pid} outlived shutdown");
}

#[tokio::test]
async fn dropping_the_connections_kills_the_server() {
    let connections = connect_one().await;
    let tools = connections.tools();
    let pid = connections.processes()[0].1;
    drop(connections);
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_exists(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !process_exists(pid),
        "server {pid} outlived its connections"
    );
    // The tools outlive the connections, and say so.
    let (_dir, ctx) = context();
    let add = tools.iter().find(|t| t.name() == "test__add").unwrap();
    let message = failure(add.call(json!({"a": 1, "b": 2}), &ctx).await);
    assert!(
        message.contains("MCP server test is not running"),
        "{message}"
    );
}

#[tokio::test]
async fn a_killed_server_gives_a_clear_error() {
    let connections = connect_one().await;
    let (_dir, ctx) = context();
    let pid = connections.processes()[0].1;
    let add = tool(&connections, "test__add");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let started = Instant::now();
    let message = failure(add.call(json!({"a": 1, "b": 2}), &ctx).await);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        message.contains("MCP server test is not running"),
        "{message}"
    );
    // Later calls fail the same way, at once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let message = failure(add.call(json!({"a": 1, "b": 2}), &ctx).await);
    assert!(message.contains("killed by signal 9"), "{message}");
    connections.shutdown().await;
}

#[tokio::test]
async fn slow_and_abandoned_calls_do_not_wedge_the_client() {
    let mut connections = connect_one().await;
    connections.set_call_timeout(Duration::from_millis(300));
    let (_dir, ctx) = context();
    let slow = tool(&connections, "test__slow");
    let message = failure(slow.call(json!({}), &ctx).await);
    assert!(message.contains("did not answer within"), "{message}");

    // A call whose future is dropped (the turn was cancelled).
    let abandoned = tokio::time::timeout(Duration::from_millis(100), slow.call(json!({}), &ctx));
    assert!(abandoned.await.is_err());

    let output = tool(&connections, "test__add")
        .call(json!({"a": 1, "b": 1}), &ctx)
        .await
        .unwrap();
    assert_eq!(output.text, "2");
    connections.shutdown().await;
}

#[tokio::test]
async fn streamable_http_servers_connect_with_headers() {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    let seen_headers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let service = StreamableHttpService::new(
        || Ok(TestServer::new()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_sse_keep_alive(None),
    );
    let seen = Arc::clone(&seen_headers);
    let router =
        axum::Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let seen = Arc::clone(&seen);
                    async move {
                        if let Some(value) = request.headers().get("x-api-key") {
                            seen.lock()
                                .unwrap()
                                .push(value.to_str().unwrap().to_owned());
                        }
                        next.run(request).await
                    }
                },
            ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let (connections, problems) = McpConnections::connect(
        vec![McpServerConfig::Http {
            name: "web".to_owned(),
            url: format!("http://{address}/mcp"),
            headers: vec![("X-Api-Key".to_owned(), "secret".to_owned())],
        }],
        CONNECT_TIMEOUT,
    )
    .await;
    assert!(problems.is_empty(), "{problems:?}");
    let (_dir, ctx) = context();
    let output = tool(&connections, "web__add")
        .call(json!({"a": 20, "b": 22}), &ctx)
        .await
        .unwrap();
    assert_eq!(output.text, "42");
    assert!(seen_headers.lock().unwrap().iter().any(|v| v == "secret"));
    connections.shutdown().await;

    // A server that is not there is a problem, not an error.
    let (connections, problems) = McpConnections::connect(
        vec![McpServerConfig::Http {
            name: "gone".to_owned(),
            url: "http://127.0.0.1:9/mcp".to_owned(),
            headers: Vec::new(),
        }],
        CONNECT_TIMEOUT,
    )
    .await;
    assert!(connections.servers().is_empty());
    assert_eq!(problems.len(), 1);
    server.abort();
}

/// End to end: the editor names MCP servers in `session/new`; the real `punie` binary starts
/// them, the model calls a tool, the result comes back; a server that cannot start leaves the
/// session working and the person is told.
#[tokio::test(flavor = "multi_thread")]
async fn mcp_servers_from_session_new_serve_the_model() {
    use crate::support::editor::{EditorOptions, prompt, with_editor};
    use crate::support::fake_model::{FakeModelServer, Reply};
    use agent_client_protocol::v1::schema::{
        EnvVariable, McpServer, McpServerStdio, NewSessionRequest, StopReason,
    };

    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call("calc__add", json!({"a": 2, "b": 3})));
    server.push(Reply::text("2 + 3 = 5"));
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("project");
    std::fs::create_dir(&ws).unwrap();
    let McpServerConfig::Stdio { command, args, .. } = stdio_server("calc") else {
        unreachable!()
    };
    let calc = McpServer::Stdio(
        McpServerStdio::new("calc", command)
            .args(args)
            .env(vec![EnvVariable::new(SERVER_ENV, "1")]),
    );
    let broken = McpServer::Stdio(McpServerStdio::new("broken", "/nonexistent/mcp-server"));
    let (stop, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = cx
                .send_request(NewSessionRequest::new(&ws).mcp_servers(vec![calc, broken]))
                .block_task()
                .await
                .unwrap()
                .session_id;
            prompt(&cx, &session, "add 2 and 3")
                .await
                .unwrap()
                .stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let requests = server.requests();
    let names: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"calc__add"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("broken")), "{names:?}");
    let result = requests[1]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(result["role"], "tool");
    assert_eq!(result["content"], "5");
    let record = record.lock().unwrap();
    assert!(
        record.message_text().contains("broken"),
        "the person is told about the failed server: {}",
        record.message_text()
    );
    assert!(record.message_text().ends_with("2 + 3 = 5"));
}
