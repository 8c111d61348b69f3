//! `--perf` in every mode: `punie serve` answers `/perf` with the current report and writes
//! report files when a session ends and at exit; `punie ask --perf` writes one and prints its
//! path; without `--perf` there is no report.

use std::time::Duration;

use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Reply};
use crate::support::served::{PATIENCE, Permission, ServeConfig, Served, punie_command};
use serde_json::json;

fn reports_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.retain(|n| n.starts_with("punie-perf-"));
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_reports_on_demand_per_session_and_at_exit() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "a.txt", "content": "a"}),
    ));
    server.push(Reply::text("done"));
    let perf_dir = tempfile::tempdir().unwrap();
    let config = ServeConfig {
        model: Some(server.spec_for(FAKE_MODEL)),
        args: vec![
            "--perf".into(),
            "--perf-dir".into(),
            perf_dir.path().display().to_string(),
        ],
        ..Default::default()
    };
    let mut served = Served::start(config).await;
    let workspace = tempfile::tempdir().unwrap();
    let mut client = served.connect().await;
    let session = client.open_session(workspace.path()).await;
    let params = json!({"sessionId": session, "prompt": [{"type": "text", "text": "write"}]});
    let response = client
        .request("session/prompt", params, Permission::Allow)
        .await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");

    let page = reqwest::get(served.url("/perf")).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<svg") && html.contains("write_file"),
        "the report shows the turn"
    );
    let data: serde_json::Value = reqwest::get(served.url("/perf.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(data["totals"]["turns"], 1, "{data}");

    // The session ends with its connection: its report is written.
    client.close().await;
    crate::support::served::eventually("the session report is written", || {
        reports_in(perf_dir.path()).len() >= 2
    })
    .await;
    served.terminate();
    assert_eq!(
        tokio::time::timeout(PATIENCE, served.wait()).await.unwrap(),
        Some(0)
    );
    let names = reports_in(perf_dir.path());
    assert!(
        names.iter().filter(|n| n.ends_with(".html")).count() >= 2,
        "session and exit reports: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_perf_there_is_no_report() {
    let served = Served::start(ServeConfig::default()).await;
    let page = reqwest::get(served.url("/perf")).await.unwrap();
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("--perf"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_with_perf_writes_a_report_and_prints_its_path() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("hello"));
    let logs = tempfile::tempdir().unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let perf_dir = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        punie_command(logs.path())
            .env("PUNIE_MODEL", server.spec_for(FAKE_MODEL))
            .args(["ask", "--perf", "--perf-dir"])
            .arg(perf_dir.path())
            .arg("--workspace")
            .arg(workspace.path())
            .arg("hi")
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("perf report:"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let path = line.split("perf report: ").nth(1).unwrap().trim();
    let html = std::fs::read_to_string(path).unwrap();
    assert!(
        html.contains("Punie perf report") || html.contains("perf"),
        "{path}"
    );
    assert_eq!(
        reports_in(perf_dir.path()).len(),
        2,
        "one HTML and one JSON file"
    );
}
