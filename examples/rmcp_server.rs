//! A real rmcp 3.11 server over stdio for the modern-era tests (`tests/modern_era.rs`): three
//! tools built with rmcp's server macros. `add` and `echo` answer at once; `greet` is a
//! multi-round-trip (MRTR) tool: without `requestState` it answers `resultType: "input_required"`
//! with one elicitation input request and an opaque `requestState`, and on the retry it completes
//! with the elicited name and the echoed state. `summarize` is the same with one sampling input
//! request (for `tests/inference.rs`: the proxy fulfils it from the inference backend).
//!
//! Test hooks (environment):
//! - `RMCP_RECORD_IN=FILE`: append every byte the server reads from stdin to FILE.
//! - `RMCP_RECORD_OUT=FILE`: append every byte the server writes to stdout to FILE.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, ElicitRequest, ElicitRequestParams, ErrorData,
    Implementation, InputRequest, InputRequests, InputRequiredResult, ProtocolVersion,
    ServerCapabilities, ServerConfig,
};
use rmcp::{schemars, tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The opaque state `greet` hands out in its `input_required` answer.
const GREET_STATE: &str = "greet-round-1:c3RhdGU=";

#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct AddArgs {
    a: i64,
    b: i64,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct EchoArgs {
    text: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct GreetArgs {
    greeting: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SummarizeArgs {
    text: String,
}

/// The opaque state `summarize` hands out.
const SUMMARIZE_STATE: &str = "summarize-round-1";

#[derive(Clone)]
struct Modern;

#[tool_router]
impl Modern {
    #[tool(description = "Add two integers")]
    async fn add(
        &self,
        Parameters(args): Parameters<AddArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(
            (args.a + args.b).to_string(),
        )]))
    }

    #[tool(description = "Echo the text back")]
    async fn echo(
        &self,
        Parameters(args): Parameters<EchoArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(args.text)]))
    }

    #[tool(description = "Summarize a text with the client's model (multi round-trip sampling)")]
    async fn summarize(
        &self,
        Parameters(args): Parameters<SummarizeArgs>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        match state.as_deref() {
            None => {
                let request = serde_json::from_value(serde_json::json!({
                    "method": "sampling/createMessage",
                    "params": {
                        "messages": [{"role": "user", "content": {"type": "text", "text": format!("Summarize: {}", args.text)}}],
                        "maxTokens": 20
                    }
                }))
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                let mut requests = InputRequests::new();
                requests.insert("summary".to_owned(), InputRequest::CreateMessage(request));
                Ok(InputRequiredResult::new(Some(requests), Some(SUMMARIZE_STATE.into())).into())
            }
            Some(SUMMARIZE_STATE) => {
                let r = responses
                    .as_ref()
                    .and_then(|r| r.get("summary"))
                    .ok_or_else(|| {
                        ErrorData::invalid_params("missing inputResponses.summary", None)
                    })?;
                Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                    "summary by {}: {}",
                    r["model"].as_str().unwrap_or("?"),
                    r["content"]["text"].as_str().unwrap_or("?")
                ))])
                .into())
            }
            Some(other) => Err(ErrorData::invalid_params(
                format!("unexpected requestState {other:?}"),
                None,
            )),
        }
    }

    #[tool(description = "Greet a user after asking for their name (multi round-trip)")]
    async fn greet(
        &self,
        Parameters(args): Parameters<GreetArgs>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        match state.as_deref() {
            None => {
                let schema = serde_json::from_value(serde_json::json!({
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"]
                }))
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                let mut requests = InputRequests::new();
                requests.insert(
                    "name".to_owned(),
                    InputRequest::Elicitation(ElicitRequest::new(
                        ElicitRequestParams::FormElicitationParams {
                            meta: None,
                            message: "What is your name?".into(),
                            requested_schema: schema,
                        },
                    )),
                );
                Ok(InputRequiredResult::new(Some(requests), Some(GREET_STATE.into())).into())
            }
            Some(GREET_STATE) => {
                let name = responses
                    .as_ref()
                    .and_then(|r| r.get("name"))
                    .and_then(|r| r["content"]["name"].as_str())
                    .ok_or_else(|| {
                        ErrorData::invalid_params("missing inputResponses.name", None)
                    })?;
                Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                    "{}, {name}! (state {GREET_STATE})",
                    args.greeting
                ))])
                .into())
            }
            Some(other) => Err(ErrorData::invalid_params(
                format!("unexpected requestState {other:?}"),
                None,
            )),
        }
    }
}

#[tool_handler]
impl ServerHandler for Modern {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.protocol_version = ProtocolVersion::V_2026_07_28;
        info.server_info = Implementation::new("rmcp-modern", "1.0.0");
        info
    }
}

/// Copies every byte that passes through into a file.
struct Tee<T> {
    inner: T,
    file: Option<File>,
}

impl<T> Tee<T> {
    fn new(inner: T, var: &str) -> std::io::Result<Tee<T>> {
        let file = match std::env::var_os(var) {
            Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
            None => None,
        };
        Ok(Tee { inner, file })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tee<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let me = &mut *self;
        let r = Pin::new(&mut me.inner).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(f)) = (&r, me.file.as_mut()) {
            f.write_all(&buf.filled()[before..])?;
            f.flush()?;
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tee<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = &mut *self;
        let r = Pin::new(&mut me.inner).poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), Some(f)) = (&r, me.file.as_mut()) {
            f.write_all(&buf[..*n])?;
            f.flush()?;
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stdin = Tee::new(tokio::io::stdin(), "RMCP_RECORD_IN")?;
    let stdout = Tee::new(tokio::io::stdout(), "RMCP_RECORD_OUT")?;
    let service = Modern.serve((stdin, stdout)).await?;
    service.waiting().await?;
    Ok(())
}
