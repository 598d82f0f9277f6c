use super::*;
use serde_json::json;

#[test]
fn a_sampling_request_becomes_a_chat_completion() {
    let params = json!({
        "messages": [
            {"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}},
            {"role": "assistant", "content": {"type": "text", "text": "Paris."}},
            {"role": "user", "content": [
                {"type": "text", "text": "And this?"},
                {"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"}
            ]}
        ],
        "systemPrompt": "You are a helpful assistant.",
        "includeContext": "thisServer",
        "temperature": 0.1,
        "stopSequences": ["\n\n"],
        "maxTokens": 100000,
        "metadata": {"provider": "x"}
    });
    let m = to_openai(&params, "smol", 4096).unwrap();
    assert_eq!(
        m.body,
        json!({
            "model": "smol",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is the capital of France?"},
                {"role": "assistant", "content": "Paris."},
                {"role": "user", "content": [
                    {"type": "text", "text": "And this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]}
            ],
            "max_tokens": 4096,
            "stream": false,
            "temperature": 0.1,
            "stop": ["\n\n"]
        })
    );
    assert_eq!(m.capped_from, Some(100000));
    assert_eq!(m.context_ignored.as_deref(), Some("thisServer"));
}

#[test]
fn tools_and_tool_results_map_to_openai_and_back() {
    let params = json!({
        "messages": [
            {"role": "user", "content": {"type": "text", "text": "Weather in Paris?"}},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "toolUseId": "call_1", "content": [{"type": "text", "text": "18°C"}]}
            ]}
        ],
        "tools": [{"name": "get_weather", "description": "Weather", "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "toolChoice": {"mode": "auto"},
        "maxTokens": 50
    });
    let m = to_openai(&params, "m", 4096).unwrap();
    assert_eq!(
        m.body["messages"][1]["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Paris"}"#
    );
    assert_eq!(
        m.body["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "18°C"})
    );
    assert_eq!(m.body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(m.body["tool_choice"], "auto");

    let answer = json!({
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"London\"}"}}]}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7}
    });
    let (result, usage) = from_openai(&answer, &[], "m").unwrap();
    assert_eq!(
        result,
        json!({"role": "assistant", "model": "m", "stopReason": "toolUse",
               "content": [{"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"city": "London"}}]})
    );
    assert_eq!(
        (usage.prompt_tokens, usage.completion_tokens),
        (Some(12), Some(7))
    );
}

#[test]
fn malformed_requests_and_answers_are_refused() {
    for bad in [
        json!({"messages": [{"role": "user", "content": {"type": "text", "text": "x"}}]}),
        json!({"messages": [], "maxTokens": 5}),
        json!({"messages": [{"role": "system", "content": {"type": "text", "text": "x"}}], "maxTokens": 5}),
        json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "mixed"},
            {"type": "tool_result", "toolUseId": "c", "content": []}]}], "maxTokens": 5}),
        json!({"messages": [{"role": "user", "content": {"type": "video"}}], "maxTokens": 5}),
    ] {
        assert!(to_openai(&bad, "m", 10).is_err(), "{bad}");
    }
    for bad in [
        json!({}),
        json!({"choices": []}),
        json!({"choices": [{"message": {"content": 5}}]}),
        json!({"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": "not json"}}]}}]}),
    ] {
        assert!(from_openai(&bad, &[], "m").is_err(), "{bad}");
    }
    let (ok, usage) = from_openai(
        &json!({"choices": [{"finish_reason": "length", "message": {"content": "Par"}}]}),
        &[],
        "asked",
    )
    .unwrap();
    assert_eq!(ok["stopReason"], "maxTokens");
    assert_eq!(ok["content"], json!({"type": "text", "text": "Par"}));
    assert_eq!(usage.model, "asked");
}
