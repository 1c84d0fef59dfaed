"""A model served over HTTP by any OpenAI-compatible server: vLLM, llama.cpp's `llama-server`,
llama-cpp-python's `python -m llama_cpp.server`, Ollama.

Only `/v1/chat/completions` (its streamed form, server-sent events) and `/v1/models` (to
name the models a server offers when it does not know ours) are used, through httpx — which
the app already has with gradio: the `openai` package would add a dependency for three
requests. First-token probabilities ask for one token with `logprobs`/`top_logprobs`; a
server that gives none, or refuses the parameters, gets None from then on and the checks
fall back to reading the text (rag/checks.py). Every failure is one French line (RagError)
naming the server; the API key is sent as a Bearer token and never appears in a message.
Only standard parameters are sent, so servers' own sampling defaults apply (llama-cpp-python's
repeat_penalty is 1.1 where the in-process backend uses 1.05). Several threads may use one
instance: httpx's client is thread-safe and keeps connections open. Prompts, chat templates
and batching are the server's; starting or stopping it is not this module's job.
"""

from __future__ import annotations

import contextlib
import json
from typing import Iterable, Iterator, Sequence

from rag.errors import RagError
from rag.llms import TOP_LOGPROBS, option_probs
from rag.settings import Settings

MAX_SHOWN = 200  # characters of a server's error message kept in ours
CUT = ("La réponse du serveur de modèles {url} s'est arrêtée au milieu (connexion coupée). Si c'est "
       "python -m llama_cpp.server, lancez-le avec --interrupt_requests false : sinon il interrompt "
       "une réponse dès qu'une autre question arrive.")


class OpenAILLM:
    """A model on an OpenAI-compatible server; as many generations at once as the server takes."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 300.0):
        import httpx

        self.name = model
        self.url = base_url.rstrip("/")
        self.timeout = timeout
        self._key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.url + "/", headers=headers, timeout=timeout)
        self.logprobs = True  # False once the server has shown it gives none

    @classmethod
    def from_settings(cls, settings: Settings) -> "OpenAILLM":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return cls(settings.openai_base_url, settings.openai_model or settings.llm, key, settings.openai_timeout)

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        body = {"model": self.name, "messages": messages, "max_tokens": max_tokens,
                "temperature": temperature, "stream": True}
        with self._errors(), self.client.stream("POST", "chat/completions", json=body) as response:
            if response.status_code >= 400:
                response.read()
                raise RagError(self._refusal(response))
            yield from self._pieces(response.iter_lines())

    def first_token_probs(self, messages: list[dict], options: Sequence[str]) -> dict[str, float] | None:
        if not self.logprobs:
            return None
        body = {"model": self.name, "messages": messages, "max_tokens": 1, "temperature": 0.0,
                "logprobs": True, "top_logprobs": TOP_LOGPROBS}
        with self._errors():
            response = self.client.post("chat/completions", json=body)
        if response.status_code >= 400 and "logprob" in _message(response).lower():
            self.logprobs = False  # the server refuses the parameters: it will not change its mind
            return None
        if response.status_code >= 400:
            raise RagError(self._refusal(response))
        top = _top_logprobs(self._json(response.text))
        if not top:
            self.logprobs = False
            return None
        return option_probs(top, options)

    def models(self) -> list[str] | None:
        """The names of the models the server offers, or None if it does not say."""
        try:
            response = self.client.get("models", timeout=min(self.timeout, 10.0))
            return [m["id"] for m in response.json()["data"]] if response.status_code == 200 else None
        except Exception:  # only used to word an error better: never an error of its own
            return None

    # ------------------------------------------------------------ reading replies

    def _pieces(self, lines: Iterable[str]) -> Iterator[str]:
        """The text pieces of a server-sent event stream; a RagError if it ends before the
        server said the reply was finished (a `finish_reason`): a cut, not an answer."""
        finished = False
        for line in lines:
            data = line[5:].strip() if line.startswith("data:") else ""  # not: blank lines, « : ping »
            if data == "[DONE]":
                break
            if not data:
                continue
            chunk = self._json(data)
            if chunk.get("error"):
                raise RagError(self._said(chunk, "pendant la réponse"))
            choice = (chunk.get("choices") or [{}])[0]
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece
            finished = finished or bool(choice.get("finish_reason"))
        if not finished:
            raise RagError(CUT.format(url=self.url))

    def _json(self, text: str) -> dict:
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise RagError(f"Réponse illisible du serveur de modèles {self.url} : {self._short(text)}")
        return value

    # ------------------------------------------------------------ errors

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """httpx's failures as one French line each."""
        import httpx

        try:
            yield
        except httpx.TimeoutException:
            raise RagError(f"Le serveur de modèles {self.url} n'a pas répondu en {self.timeout:g} s "
                           "(réglage openai_timeout).") from None
        except httpx.ConnectError:
            raise RagError(f"Serveur de modèles injoignable à {self.url} : lancez-le (par exemple "
                           "`python -m llama_cpp.server --model FICHIER.gguf --port 8000`) ou corrigez "
                           "openai_base_url.") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            raise RagError(CUT.format(url=self.url)) from None
        except httpx.HTTPError as exc:
            raise RagError(f"Échange impossible avec le serveur de modèles {self.url} : "
                           f"{self._short(str(exc) or type(exc).__name__)}") from None

    def _refusal(self, response) -> str:
        """What an HTTP error status means, in a sentence the user can act on."""
        code, message = response.status_code, _message(response)
        if code in (401, 403):
            return (f"Le serveur de modèles {self.url} refuse l'accès (HTTP {code}) : vérifiez la clé "
                    "d'API (RAG_OPENAI_API_KEY).")
        lowered = message.lower()
        if code == 404 or ("model" in lowered and any(w in lowered for w in ("not found", "does not exist"))):
            return self._unknown(code, message)
        return f"Le serveur de modèles {self.url} a répondu HTTP {code} : {self._short(message)}"

    def _unknown(self, code: int, message: str) -> str:
        offered = self.models()
        if offered and self.name not in offered:
            return (f"Modèle « {self.name} » inconnu du serveur {self.url} (il propose : "
                    f"{', '.join(offered[:10])}) : réglez openai_model.")
        if offered is None and code == 404:
            return (f"Rien à l'adresse {self.url}/chat/completions (HTTP 404) : openai_base_url doit "
                    "mener à l'API compatible OpenAI, souvent en /v1.")
        return f"Le serveur de modèles {self.url} a répondu HTTP {code} : {self._short(message)}"

    def _said(self, body: dict, when: str) -> str:
        return f"Le serveur de modèles {self.url} signale une erreur {when} : {self._short(_error_text(body))}"

    def _short(self, text: str) -> str:
        """One line of at most MAX_SHOWN characters, without the API key if a server echoed it."""
        text = " ".join(str(text).split())
        if self._key:
            text = text.replace(self._key, "***")
        return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 1] + "…"


def _message(response) -> str:
    """The error message of a server's reply: OpenAI's {"error": {"message"}}, FastAPI's
    {"detail"}, or the body as text."""
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason_phrase
    return _error_text(body) if isinstance(body, dict) else str(body)


def _error_text(body: dict) -> str:
    error = body.get("error", body.get("detail", body))
    if isinstance(error, dict):
        error = error.get("message", error)
    return error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)


def _top_logprobs(reply: dict) -> list[tuple[str, float]]:
    """(token, log-probability) of the first generated token's alternatives, or [] if none."""
    try:
        first = reply["choices"][0]["logprobs"]["content"][0]
        return [(t["token"], float(t["logprob"])) for t in first["top_logprobs"]]
    except (KeyError, IndexError, TypeError, ValueError):
        return []
