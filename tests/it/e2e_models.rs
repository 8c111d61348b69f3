//! Switching models per session: the editor's model picker (a session config option of
//! category `model`) and the legacy `session/set_model`, effective from the next request.

use crate::support::editor::{EditorOptions, prompt, with_editor};
use crate::support::fake_model::{FakeModelServer, Reply};
use agent_client_protocol::UntypedMessage;
use agent_client_protocol::v1::schema::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_model_picker_switches_from_the_next_request() {
    let server = FakeModelServer::start().await;
    server.set_models(vec![
        "fake-model".into(),
        "bigger-model".into(),
        "tiny-model".into(),
    ]);
    server.push(Reply::text("from the first model"));
    server.push(Reply::text("from the bigger model"));
    server.push(Reply::text("from the tiny model"));
    let dir = tempfile::tempdir().unwrap();
    let (errors, _) = with_editor(
        &server.spec_for("fake-model"),
        dir.path(),
        EditorOptions::default(),
        async |cx, _| {
            let created = cx
                .send_request(NewSessionRequest::new(dir.path()))
                .block_task()
                .await
                .unwrap();
            let options = created.config_options.expect("a model picker");
            let picker = &options[0];
            assert_eq!(&*picker.id.0, "model");
            assert_eq!(picker.category, Some(SessionConfigOptionCategory::Model));
            let SessionConfigKind::Select(select) = &picker.kind else {
                panic!("a select")
            };
            assert_eq!(&*select.current_value.0, "fake-model");
            let SessionConfigSelectOptions::Ungrouped(choices) = &select.options else {
                panic!()
            };
            let values: Vec<&str> = choices.iter().map(|c| &*c.value.0).collect();
            assert_eq!(values, ["fake-model", "bigger-model", "tiny-model"]);

            let session = created.session_id;
            prompt(&cx, &session, "one").await.unwrap();
            let changed = cx
                .send_request(SetSessionConfigOptionRequest::new(
                    session.clone(),
                    "model",
                    SessionConfigValueId::new("bigger-model"),
                ))
                .block_task()
                .await
                .unwrap();
            let SessionConfigKind::Select(select) = &changed.config_options[0].kind else {
                panic!()
            };
            assert_eq!(&*select.current_value.0, "bigger-model");
            prompt(&cx, &session, "two").await.unwrap();

            let legacy = UntypedMessage::new(
                "session/set_model",
                json!({"sessionId": session, "modelId": "tiny-model"}),
            )
            .unwrap();
            cx.send_request(legacy).block_task().await.unwrap();
            prompt(&cx, &session, "three").await.unwrap();

            let unknown = cx
                .send_request(SetSessionConfigOptionRequest::new(
                    session.clone(),
                    "model",
                    SessionConfigValueId::new("no-such-model"),
                ))
                .block_task()
                .await
                .unwrap_err();
            let wrong_option = cx
                .send_request(SetSessionConfigOptionRequest::new(
                    session.clone(),
                    "temperature",
                    SessionConfigValueId::new("x"),
                ))
                .block_task()
                .await
                .unwrap_err();
            (unknown, wrong_option)
        },
    )
    .await;
    let models: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r["model"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(models, ["fake-model", "bigger-model", "tiny-model"]);
    assert_eq!(
        errors.0.code,
        agent_client_protocol::ErrorCode::INVALID_PARAMS
    );
    assert!(
        errors.0.message.contains("no-such-model") && errors.0.message.contains("bigger-model"),
        "{}",
        errors.0.message
    );
    assert!(
        errors.1.message.contains("unknown config option"),
        "{}",
        errors.1.message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_model_is_refused_at_session_start_with_the_list() {
    let server = FakeModelServer::start().await;
    server.set_models(vec!["qwen3:8b".into(), "llama3.1:8b".into()]);
    let dir = tempfile::tempdir().unwrap();
    let (error, _) = with_editor(
        &server.spec_for("qwen3-typo"),
        dir.path(),
        EditorOptions::default(),
        async |cx, _| {
            cx.send_request(NewSessionRequest::new(dir.path()))
                .block_task()
                .await
                .unwrap_err()
        },
    )
    .await;
    assert!(error.message.contains("qwen3-typo"), "{}", error.message);
    assert!(
        error.message.contains("qwen3:8b") && error.message.contains("llama3.1:8b"),
        "lists what is available: {}",
        error.message
    );
    assert!(server.requests().is_empty());
}
