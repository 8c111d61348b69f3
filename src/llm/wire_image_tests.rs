//! Unit tests of the wire encoding of images (`wire::request_body`), beside `wire.rs` to keep
//! that file within the size the layout allows.

use serde_json::json;

use super::wire::request_body;
use super::{ChatRequest, Message, ToolCall};

#[test]
fn images_become_data_url_parts_of_a_user_message() {
    use crate::image::Image;
    let png = Image::new("image/png", "YWJj");
    let jpeg = Image::new("image/jpeg", "/9j/");
    let request = ChatRequest {
        messages: vec![
            Message::User {
                content: "what is this?".into(),
            },
            Message::Images {
                images: vec![png.clone(), jpeg],
            },
            Message::Assistant {
                content: None,
                tool_calls: vec![ToolCall {
                    id: "c".into(),
                    name: "shot".into(),
                    arguments: "{}".into(),
                }],
            },
            Message::Tool {
                tool_call_id: "c".into(),
                content: "a picture".into(),
            },
            Message::Images { images: vec![png] },
            Message::Images { images: vec![] },
        ],
        tools: vec![],
        temperature: None,
        max_tokens: None,
    };
    let messages = request_body("m", &request)["messages"].clone();
    assert_eq!(
        messages,
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,YWJj"}},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "shot", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "c", "content": "a picture"},
            {"role": "user", "content": [
                {"type": "text", "text": "The images the tool calls above returned:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,YWJj"}},
            ]},
        ])
    );
}
