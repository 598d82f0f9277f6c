//! OpenAI `finish_reason` → MCP `stopReason` (SPEC §11). `stop` is ambiguous in OpenAI's API
//! (end of turn, or one of the request's `stop` strings); vLLM says which in `stop_reason` and
//! SGLang in `matched_stop` (the matched string, or the EOS token id as a number).

use serde_json::Value;

/// The MCP stop reason for one choice of a completion.
pub fn stop_reason(choice: &Value, stop_sequences: &[String]) -> String {
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    match finish {
        Some("length") => "maxTokens".into(),
        Some("tool_calls") | Some("function_call") => "toolUse".into(),
        Some("stop") | None => {
            let matched = ["stop_reason", "matched_stop"]
                .iter()
                .find_map(|k| choice.get(*k).and_then(Value::as_str));
            match matched {
                Some(s) if stop_sequences.iter().any(|q| q == s) => "stopSequence".into(),
                _ => "endTurn".into(),
            }
        }
        // Other reasons (content_filter, …) are passed on: MCP allows any value here.
        Some(other) => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finish_reasons_map_to_mcp_stop_reasons() {
        let stops = vec!["END".to_owned()];
        let cases = [
            (json!({"finish_reason": "length"}), "maxTokens"),
            (json!({"finish_reason": "tool_calls"}), "toolUse"),
            (json!({"finish_reason": "stop"}), "endTurn"),
            // vLLM: the matched stop string, or a token id (EOS) when it ended by itself.
            (
                json!({"finish_reason": "stop", "stop_reason": "END"}),
                "stopSequence",
            ),
            (
                json!({"finish_reason": "stop", "stop_reason": 2}),
                "endTurn",
            ),
            (
                json!({"finish_reason": "stop", "stop_reason": null}),
                "endTurn",
            ),
            // SGLang.
            (
                json!({"finish_reason": "stop", "matched_stop": "END"}),
                "stopSequence",
            ),
            (
                json!({"finish_reason": "stop", "matched_stop": 128009}),
                "endTurn",
            ),
            // A string the request did not ask for is not a stop sequence.
            (
                json!({"finish_reason": "stop", "stop_reason": "</s>"}),
                "endTurn",
            ),
            (json!({"finish_reason": "content_filter"}), "content_filter"),
        ];
        for (choice, want) in cases {
            assert_eq!(stop_reason(&choice, &stops), want, "{choice}");
        }
    }
}
