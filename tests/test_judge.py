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


# ---------------------------------------------------------------- pairwise judging and its checks
@pytest.mark.parametrize("text, verdict", [
    ("A is clearer. [[A]]", "A"), ("[[B]]", "B"), ("Equally good. [[C]]", "tie"), ("[[A]] ... on reflection [[B]]", "B"),
    ("no verdict", None), ("[[D]]", None), ("", None),
])
def test_parse_pairwise_verdict(text, verdict):
    assert metrics.parse_pairwise_verdict(text) == verdict


def test_pairwise_round_trip_with_a_fake_server_in_both_orders():
    with FakeJudge("B is more accurate. [[B]]") as fake:
        cfg = metrics.judge_config(env_for(fake.url))
        judge = metrics.remote_pairwise_judge(cfg, environ=env_for(fake.url))
        records = metrics.compare_both_orders(judge, ["Name a prime."], ["9"], ["7"])
    # The fake always says "B": with the answers swapped that is a position bias, not a win.
    assert records == [{"first": "after", "second": "before", "outcome": "inconsistent"}]
    first, second = fake.requests
    for req in (first, second):
        assert req["path"] == "/v1/chat/completions" and req["headers"]["Authorization"] == f"Bearer {SECRET}"
        assert "[[A]]" in req["body"]["messages"][0]["content"] and SECRET not in json.dumps(req["body"])
    a_first = first["body"]["messages"][0]["content"]
    assert a_first.index("9") < a_first.index("7")  # before shown as A first ...
    b_first = second["body"]["messages"][0]["content"]
    assert b_first.index("7") < b_first.index("9")  # ... then after shown as A


def test_judge_pair_errors_hide_the_key():
    with FakeJudge(status=500) as fake:
        cfg = metrics.judge_config(env_for(fake.url))
        with pytest.raises(RuntimeError, match="HTTP 500") as info:
            metrics.judge_pair(cfg, "q", "a", "b", environ=env_for(fake.url))
    assert SECRET not in str(info.value)


def test_pairwise_works_with_a_monkeypatched_sender(monkeypatch):
    sent = []

    def fake_send(endpoint, headers, body, timeout):
        sent.append(json.loads(body))
        return "Answer A is more complete. [[A]]"

    monkeypatch.setattr(metrics, "_send", fake_send)
    cfg = metrics.JudgeConfig("https://judge.example/v1", "m")
    assert metrics.judge_pair(cfg, "q", "long answer", "short", environ={})["verdict"] == "A"
    assert sent[0]["model"] == "m" and sent[0]["temperature"] == 0


# Answers of varied length where quality and length are unrelated: "after" is longer in half the pairs.
QUESTIONS = [f"question {i}" for i in range(40)]
BEFORE = [f"before{i} " + " ".join(["word"] * (10 + (i * 7) % 23)) for i in range(40)]
AFTER = [f"after{i} " + " ".join(["word"] * (10 + (i * 11) % 29)) for i in range(40)]


def test_the_swap_exposes_a_position_biased_judge():
    records = metrics.compare_both_orders(metrics.first_position_judge, QUESTIONS, BEFORE, AFTER)
    s = metrics.pairwise_summary(records)
    assert s["first_order_after_wins"] == 0  # a single order shows "before always wins" ...
    assert s["consistency"] == 0.0 and s["inconsistent"] == 40  # ... the swap shows it is the position
    assert s["after_wins"] == s["before_wins"] == 0
    # Reversing the single order flips the naive verdict completely.
    flipped = metrics.compare_both_orders(metrics.first_position_judge, QUESTIONS, AFTER, BEFORE, names=("after", "before"))
    assert metrics.pairwise_summary(flipped, names=("after", "before"))["first_order_before_wins"] == 0


def test_length_control_exposes_a_length_biased_judge():
    records = metrics.compare_both_orders(metrics.longer_answer_judge, QUESTIONS, BEFORE, AFTER)
    s = metrics.pairwise_summary(records)
    assert s["consistency"] == 1.0  # a pure length bias survives the swap: the swap alone cannot catch it
    pref = metrics.length_preference(records, BEFORE, AFTER)
    assert pref["share"] == 1.0 and pref["low"] > 0.9  # every decided verdict went to the longer answer
    buckets = metrics.wins_by_length_bucket(records, BEFORE, AFTER)
    shorter, similar, longer = buckets.values()
    assert list(buckets)[0] == "after shorter by >20%"
    assert shorter["after"] == 0 and shorter["before"] == shorter["pairs"] > 0
    assert longer["after"] == longer["pairs"] > 0 and longer["before"] == 0
    assert sum(b["pairs"] for b in buckets.values()) == 40


def test_a_fair_judge_passes_both_checks():
    # A judge that knows which answer is better (here: the even-numbered questions favour "after")
    # and ignores position and length.
    better = {q: ("after" if i % 2 == 0 else "before") for i, q in enumerate(QUESTIONS)}
    lookup = dict(zip(QUESTIONS, zip(BEFORE, AFTER)))

    def fair(question, a, b):
        before, after = lookup[question]
        winner = after if better[question] == "after" else before
        return "A" if a == winner else "B"

    records = metrics.compare_both_orders(fair, QUESTIONS, BEFORE, AFTER)
    s = metrics.pairwise_summary(records)
    assert s["consistency"] == 1.0 and s["after_wins"] == 20
    assert s["after_win_low"] < 0.5 < s["after_win_high"]
    pref = metrics.length_preference(records, BEFORE, AFTER)
    assert pref["low"] < 0.5 < pref["high"]


def test_invalid_verdicts_are_counted_not_guessed():
    records = metrics.compare_both_orders(lambda q, a, b: None, ["q"], ["a"], ["b"])
    assert records[0]["outcome"] == "invalid"
    assert metrics.pairwise_summary(records)["invalid"] == 1
