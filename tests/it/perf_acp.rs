//! The `_punie/perf_report` ACP extension method, asked by an editor over a real (in-memory)
//! ACP connection: both formats, one format, a bad format, and perf off.

use std::sync::Arc;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::InitializeRequest;
use agent_client_protocol::{Agent as AgentRole, Channel, Client};
use punie::agent::Agent;
use punie::perf::{PerfRecorder, PerfReport};
use punie::testing::{FakeEditor, ScriptedModel};
use serde_json::{Value, json};

/// The request as an editor would send it, with raw params.
#[derive(
    Debug, Clone, serde::Serialize, serde::Deserialize, agent_client_protocol::JsonRpcRequest,
)]
#[request(method = "_punie/perf_report", response = Value)]
struct PerfReportRequest(Value);

/// Connects a bare ACP client to `agent`, initializes, and asks for the report with `params`.
async fn ask(agent: Arc<Agent>, params: Value) -> Result<Value, agent_client_protocol::Error> {
    let (agent_end, editor_end) = Channel::duplex();
    let served = tokio::spawn(punie::acp::serve(agent, agent_end));
    let (tx, rx) = tokio::sync::oneshot::channel();
    Client
        .v1()
        .name("perf-test-editor")
        .connect_with(editor_end, async move |cx: ConnectionTo<AgentRole>| {
            cx.send_request(InitializeRequest::new(ProtocolVersion::V1))
                .block_task()
                .await?;
            let answer = cx
                .send_request(PerfReportRequest(params))
                .block_task()
                .await;
            let _ = tx.send(answer);
            Ok(())
        })
        .await
        .unwrap();
    let answer = rx.await.unwrap();
    served.abort();
    answer
}

async fn agent_with_one_turn(perf: Option<Arc<PerfRecorder>>) -> Arc<Agent> {
    let model = Arc::new(ScriptedModel::new());
    model.tool_call("read_file", json!({"path": "a.txt"}));
    model.text("It says hi.");
    let mut builder = Agent::builder().model(model);
    if let Some(perf) = perf {
        builder = builder.observer(perf);
    }
    let agent = builder.build().unwrap();
    let editor = FakeEditor::new().with_file("/project/a.txt", "hi");
    let connection = editor.connect(agent.clone()).await.unwrap();
    let session = connection.new_session("/project").await.unwrap();
    connection
        .prompt(&session, "what is in a.txt?")
        .await
        .unwrap();
    connection.close().await;
    agent
}

#[tokio::test]
async fn the_report_comes_in_both_formats_by_default() {
    let agent = agent_with_one_turn(Some(Arc::new(PerfRecorder::new()))).await;
    for params in [json!({}), Value::Null] {
        let answer = ask(agent.clone(), params).await.unwrap();
        let html = answer["html"].as_str().expect("html");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("read_file"));
        let report: PerfReport = serde_json::from_value(answer["json"].clone()).unwrap();
        assert_eq!(
            report.totals.turns, 1,
            "a turn from another connection is there"
        );
        assert_eq!(report.tools[0].name, "read_file");
        assert_eq!(report.editor_methods[0].key, "fs/read_text_file");
    }
}

#[tokio::test]
async fn one_format_can_be_chosen() {
    let agent = agent_with_one_turn(Some(Arc::new(PerfRecorder::new()))).await;
    let html = ask(agent.clone(), json!({"format": "html"})).await.unwrap();
    assert!(html["html"].is_string());
    assert!(html.get("json").is_none(), "{html}");
    let json = ask(agent.clone(), json!({"format": "json"})).await.unwrap();
    assert!(json.get("html").is_none());
    assert_eq!(json["json"]["format"], "punie-perf/1");
    let error = ask(agent, json!({"format": "pdf"})).await.unwrap_err();
    assert_eq!(i32::from(error.code), -32602);
    assert!(error.message.contains("pdf"), "{}", error.message);
}

#[tokio::test]
async fn without_perf_the_editor_is_told_how_to_turn_it_on() {
    let agent = agent_with_one_turn(None).await;
    let error = ask(agent, json!({})).await.unwrap_err();
    assert_eq!(
        error.message,
        "perf is off: start punie with --perf or PUNIE_PERF=1"
    );
    assert_eq!(i32::from(error.code), -32601);
}
