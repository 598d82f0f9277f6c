//! Which backend model answers a request: the first of the server's `modelPreferences.hints`
//! that is a substring of a served model's id (hints in the server's order of preference,
//! case-insensitive), else the backend's first listed model — its default. A hint never names a
//! model the backend does not serve: vLLM answers 404 to an unknown model name.

use serde_json::Value;

/// The model ids of a `/v1/models` answer, in the backend's order.
pub fn served_models(listing: &Value) -> Vec<String> {
    listing
        .get("data")
        .and_then(Value::as_array)
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The hint names of a sampling request's `modelPreferences`.
pub fn hints(params: &Value) -> Vec<String> {
    params
        .pointer("/modelPreferences/hints")
        .and_then(Value::as_array)
        .map(|hs| {
            hs.iter()
                .filter_map(|h| h.get("name").and_then(Value::as_str))
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The model to ask for; `None` when the backend serves none.
pub fn choose<'a>(hints: &[String], served: &'a [String]) -> Option<&'a str> {
    for hint in hints {
        let hint = hint.to_lowercase();
        if let Some(m) = served.iter().find(|m| m.to_lowercase().contains(&hint)) {
            return Some(m);
        }
    }
    served.first().map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hints_match_by_substring_in_order_else_the_default() {
        let served = served_models(&json!({"object": "list", "data": [
            {"id": "meta-llama/Llama-3.1-8B-Instruct"}, {"id": "Qwen/Qwen2.5-7B-Instruct"}
        ]}));
        let p =
            json!({"modelPreferences": {"hints": [{"name": "claude-3-sonnet"}, {"name": "qwen"}]}});
        assert_eq!(
            choose(&hints(&p), &served),
            Some("Qwen/Qwen2.5-7B-Instruct")
        );
        let p = json!({"modelPreferences": {"hints": [{"name": "gpt-4o"}]}});
        assert_eq!(
            choose(&hints(&p), &served),
            Some("meta-llama/Llama-3.1-8B-Instruct")
        );
        assert_eq!(
            choose(&hints(&json!({})), &served),
            Some("meta-llama/Llama-3.1-8B-Instruct")
        );
        assert_eq!(choose(&[], &[]), None);
        assert!(served_models(&json!({"data": "nope"})).is_empty());
    }
}
