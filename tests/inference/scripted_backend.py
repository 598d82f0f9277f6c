"""A scripted OpenAI-compatible backend for tests/inference.rs: what llama.cpp cannot produce.

Usage: scripted_backend.py PORT_FILE RECORD_FILE
Binds 127.0.0.1 on a free port, writes the port to PORT_FILE, appends every chat request body
(one JSON line) to RECORD_FILE. Behaviour by a marker in the last message's text:
  TOOLS    -> a tool call (finish_reason tool_calls)
  STOPSEQ  -> finish_reason stop with vLLM stop_reason "END" (the matched stop string)
  SLOW     -> answers after 30 s; a closed connection is recorded as {"disconnected": …}
  GARBAGE  -> 200 with a body that is not JSON
  ERROR    -> HTTP 500
  MODEL404 -> HTTP 404 as vLLM answers for a model it does not serve
  SECRET   -> text carrying an AWS access key id
anything else -> "scripted answer" with finish_reason stop.
Models: vLLM-like, an unknown model name gets 404.
"""
import json
import select
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"]
PORT_FILE, RECORD = sys.argv[1], sys.argv[2]


def last_text(body):
    msgs = body.get("messages") or []
    if not msgs:
        return ""
    c = msgs[-1].get("content")
    if isinstance(c, list):
        return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
    return c or ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, b"", "text/plain")
        if self.path == "/v1/models":
            return self.reply(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in MODELS]})
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        with open(RECORD, "a") as f:
            f.write(json.dumps(body) + "\n")
        if self.path != "/v1/chat/completions":
            return self.reply(404, {"error": "not found"})
        model = body.get("model")
        if model not in MODELS:
            return self.reply(404, {"object": "error", "message": f"The model `{model}` does not exist.", "code": 404})
        text = last_text(body)
        if "MODEL404" in text:
            # A model listed a moment ago and gone now (the backend restarted with another).
            return self.reply(404, {"object": "error", "message": f"The model `{model}` does not exist.", "code": 404})
        msg = {"role": "assistant", "content": "scripted answer"}
        choice = {"index": 0, "finish_reason": "stop", "stop_reason": None}
        if "SLOW" in text:
            # Wait 30 s, noticing when the proxy closes the connection (a cancelled request).
            end = time.time() + 30
            while time.time() < end:
                readable, _, _ = select.select([self.connection], [], [], 0.1)
                if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                    with open(RECORD, "a") as f:
                        f.write(json.dumps({"disconnected": text}) + "\n")
                    return
        if "GARBAGE" in text:
            return self.reply(200, b"<html>this is not json", "text/html")
        if "ERROR" in text:
            return self.reply(500, {"object": "error", "message": "CUDA out of memory"})
        if "TOOLS" in text:
            msg = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_7", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}
            choice["finish_reason"] = "tool_calls"
        elif "STOPSEQ" in text:
            msg["content"] = "partial answer"
            choice["stop_reason"] = "END"
        elif "SECRET" in text:
            msg["content"] = "the key is AKIAIOSFODNN7EXAMPLE ok"
        choice["message"] = msg
        self.reply(200, {"id": "cmpl-1", "object": "chat.completion", "model": model, "choices": [choice],
                         "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}})


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
with open(PORT_FILE + ".part", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(PORT_FILE + ".part", PORT_FILE)
srv.serve_forever()
