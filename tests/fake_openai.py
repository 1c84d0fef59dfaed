"""A fake OpenAI-compatible model server for the tests: a threading HTTP server on 127.0.0.1.

It speaks what rag/llms/openai.py uses — `GET /v1/models`, `POST /v1/chat/completions`,
plain or streamed as server-sent events (chunked, `data: {…}` then `data: [DONE]`), with
`logprobs`/`top_logprobs` — and answers as tests/fakes.py's FakeLLM does. `behave` makes it
misbehave for the next requests: wait, fail with a status, drop the connection mid-stream,
end the stream early as llama-cpp-python does when another request arrives, give no
log-probabilities or refuse the parameter. It records each request and how many ran at once.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fakes import FakeLLM


class Behaviour:
    """What the server does; every field can be changed while it runs."""

    def __init__(self):
        self.delay = 0.0  # seconds before replying
        self.piece_delay = 0.0  # seconds between streamed pieces
        self.status: int | None = None  # reply with this error status…
        self.message = "boom"  # … and this message
        self.drop_after: int | None = None  # close the connection after this many pieces
        self.interrupt_after: int | None = None  # send [DONE] after this many pieces, unfinished
        self.logprobs = "yes"  # "yes", "none" (ignored), "refuse" (HTTP 400)
        self.fail_on: str | None = None  # the status applies only to prompts holding this


class FakeOpenAIServer:
    """`with FakeOpenAIServer() as server:` serves on `server.url` (…/v1) until the block ends."""

    def __init__(self, models=("fake",), api_key: str | None = None, port: int = 0):
        self.models, self.api_key = list(models), api_key
        self.behaviour = Behaviour()
        self.requests: list[dict] = []
        self.running = self.most_at_once = 0
        self.model = FakeLLM()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *_: None  # a client that gave up (timeout) is no news
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def behave(self, **changes) -> None:
        for name, value in changes.items():
            setattr(self.behaviour, name, value)

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1


def _handler(server: FakeOpenAIServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                return self._json(404, {"detail": "Not Found"})
            self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in server.models]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
            server.enter()
            self.counted = True
            try:
                self._answer(body)
            finally:
                self._done()

        def _done(self) -> None:
            """No longer counted as running: called before the last bytes go out, since the
            client may send its next request as soon as it has them."""
            if getattr(self, "counted", False):
                self.counted = False
                server.leave()

        def _answer(self, body: dict) -> None:
            b = server.behaviour
            time.sleep(b.delay)
            refusal = self._refusal(body)
            if refusal:
                return self._json(*refusal)
            reply = server.model.reply(body["messages"])
            if body.get("stream"):
                return self._stream(reply.split(" "), b)
            self._json(200, _completion(reply, body, b.logprobs))

        def _refusal(self, body: dict) -> tuple[int, dict] | None:
            b = server.behaviour
            if self.path != "/v1/chat/completions":
                return 404, {"detail": "Not Found"}
            if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                return 401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}}
            if body.get("model") not in server.models:
                return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                       "type": "NotFoundError", "code": 404}}
            if b.status and (b.fail_on is None or b.fail_on in body["messages"][-1]["content"]):
                return b.status, {"error": {"message": b.message, "type": "server_error"}}
            if body.get("logprobs") and b.logprobs == "refuse":
                return 400, {"error": {"message": "logprobs is not supported by this server"}}
            return None

        def _stream(self, words: list[str], b: Behaviour) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._event(": ping")  # a comment, as sse-starlette sends
            for i, word in enumerate(words):
                if i == b.drop_after:  # mid-stream, without the closing chunk
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if i == b.interrupt_after:
                    return self._event("data: [DONE]", last=True)
                piece = word if i == len(words) - 1 else word + " "
                self._event("data: " + json.dumps(_chunk({"content": piece}, None)))
                time.sleep(b.piece_delay)
            self._event("data: " + json.dumps(_chunk({}, "stop")))
            self._event("data: [DONE]", last=True)

        def _event(self, text: str, last: bool = False) -> None:
            if last:
                self._done()
            data = (text + "\n\n").encode("utf-8")
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            if last:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _json(self, status: int, value: dict) -> None:
            data = json.dumps(value).encode("utf-8")
            self._done()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _chunk(delta: dict, finish: str | None) -> dict:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _completion(reply: str, body: dict, logprobs: str) -> dict:
    """A whole reply (FakeLLM's first token only when max_tokens is 1), with the first token's
    alternatives as FakeLLM.first_token_probs gives them when asked and `logprobs` is "yes"."""
    first = reply.split(" ")[0]
    other = "non" if first == "oui" else "Je" if first != "Je" else "["
    content = first if body.get("max_tokens") == 1 else reply
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop",
              "logprobs": None}
    if body.get("logprobs") and logprobs == "yes":
        top = [{"token": first, "logprob": math.log(0.9)}, {"token": other, "logprob": math.log(0.02)}]
        choice["logprobs"] = {"content": [{"token": first, "logprob": math.log(0.9), "top_logprobs": top}]}
    return {"id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model"), "choices": [choice]}
