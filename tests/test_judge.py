"""The LLM-judge client and the reference-free answer signals.

The judge is exercised against a fake OpenAI-compatible server on 127.0.0.1 (never a real endpoint):
the request it receives is checked, and the reply is parsed.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from gptforall_utils import metrics

SECRET = "sk-test-never-print-me"


class FakeJudge:
    """A local server that records each request and answers with a canned reply or status."""

    def __init__(self, reply: str = "Clear and correct. [[8]]", status: int = 200, raw: bytes | None = None):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers["Content-Length"])
                outer.requests.append({"path": self.path, "headers": dict(self.headers),
                                       "body": json.loads(self.rfile.read(length))})
                payload = raw if raw is not None else json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def env_for(url: str) -> dict:
    return {metrics.JUDGE_URL_ENV: url, metrics.JUDGE_MODEL_ENV: "judge-model", metrics.JUDGE_KEY_ENV: SECRET}


def test_no_judge_without_url_and_model():
    assert metrics.judge_config({}) is None
    assert metrics.judge_config({metrics.JUDGE_URL_ENV: "http://127.0.0.1:1/v1"}) is None
    cfg = metrics.judge_config(env_for("http://127.0.0.1:1/v1/"))
    assert cfg.endpoint == "http://127.0.0.1:1/v1/chat/completions"


def test_bad_judge_url_is_refused():
    with pytest.raises(ValueError, match="http"):
        metrics.judge_config({metrics.JUDGE_URL_ENV: "127.0.0.1:8000", metrics.JUDGE_MODEL_ENV: "m"})


def test_key_is_never_in_the_config_repr_or_body():
    cfg = metrics.judge_config(env_for("https://judge.example/v1"))
    endpoint, headers, body = metrics.judge_request(cfg, "What is 2+2?", "4", environ=env_for(""))
    assert SECRET not in repr(cfg) and SECRET not in str(cfg)
    assert SECRET not in body.decode()
    assert headers["Authorization"] == f"Bearer {SECRET}"
    sent = json.loads(body)
    assert sent["model"] == "judge-model" and sent["temperature"] == 0
    assert "What is 2+2?" in sent["messages"][0]["content"] and "[[rating]]" in sent["messages"][0]["content"]


def test_judge_round_trip_with_a_fake_server():
    with FakeJudge("The answer is relevant but shallow. Rating: [[6]]") as fake:
        cfg = metrics.judge_config(env_for(fake.url))
        result = metrics.judge_answer(cfg, "Name a prime.", "7 is prime.", environ=env_for(fake.url))
    assert result["rating"] == 6.0
    assert "shallow" in result["explanation"]
    (req,) = fake.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert "7 is prime." in req["body"]["messages"][0]["content"]


def test_judge_http_error_is_clear_and_hides_the_key():
    with FakeJudge(status=401) as fake:
        cfg = metrics.judge_config(env_for(fake.url))
        with pytest.raises(RuntimeError, match="HTTP 401") as info:
            metrics.judge_answer(cfg, "q", "a", environ=env_for(fake.url))
    assert SECRET not in str(info.value)


def test_judge_reply_without_choices_is_an_error():
    with FakeJudge(raw=b'{"error": "overloaded"}') as fake:
        cfg = metrics.judge_config(env_for(fake.url))
        with pytest.raises(RuntimeError, match="choices"):
            metrics.judge_answer(cfg, "q", "a", environ=env_for(fake.url))


@pytest.mark.parametrize("text, rating", [
    ("Good. [[7]]", 7.0), ("[[3]] then revised to [[9]]", 9.0), ("Rating: [[ 8.5 ]]", 8.5),
    ("no rating here", None), ("[[0]]", None), ("[[11]]", None), ("", None),
])
def test_parse_judge_rating(text, rating):
    assert metrics.parse_judge_rating(text) == rating


def test_repetition_rate():
    assert metrics.repetition_rate("the cat sat on the mat") == 0.0
    assert metrics.repetition_rate("") == 0.0 and metrics.repetition_rate("two words") == 0.0
    loop = "I am here. " * 10  # 30 words, trigrams repeat after the first three
    assert metrics.repetition_rate(loop) == pytest.approx(1 - 3 / 28)
    assert metrics.repetition_rate("a b a b a b", n=2) == pytest.approx(1 - 2 / 5)
    with pytest.raises(ValueError):
        metrics.repetition_rate("x", n=0)


def test_answer_signals():
    s = metrics.answer_signals(["one two three", "", "go go go go go"], stopped=[True, True, False])
    assert s["words"] == pytest.approx((3 + 0 + 5) / 3)
    assert s["empty"] == pytest.approx(1 / 3)
    assert s["stops_at_eos"] == pytest.approx(2 / 3)
    assert s["repetition"] == pytest.approx((0 + 0 + (1 - 1 / 3)) / 3)
    assert "stops_at_eos" not in metrics.answer_signals(["x"])
    with pytest.raises(ValueError):
        metrics.answer_signals([])
    with pytest.raises(ValueError):
        metrics.answer_signals(["a"], stopped=[True, False])
