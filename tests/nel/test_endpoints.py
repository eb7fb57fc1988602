"""NEL's ``url`` / ``protocol`` / ``generation``: full endpoints, completions, no silent path switch."""

from __future__ import annotations

import pytest

from react_eval.engine.config import ConfigError, validate_config
from react_eval.model.config import ModelConfig
from tests.nel.helpers import DATA, run_config
from tests.support.scripted_server import answer


def service(url: str, **extra):
    return {"type": "api", "url": url, "model": "m", "api_key": "k", "max_attempts": 1, **extra}


def gsm8k(svc: dict, **entry) -> dict:
    return {"services": {"model": svc},
            "benchmarks": [{"name": "gsm8k", "solver": {"type": "simple", "service": "model"},
                            "options": {"dataset": str(DATA / "gsm8k_mini.jsonl")}, "max_problems": 1, **entry}]}


@pytest.mark.parametrize("url, protocol, base, endpoint, expect_protocol", [
    ("http://h:1/v1/chat/completions", None, "http://h:1/v1", None, "chat_completions"),
    ("http://h:1/v1", None, "http://h:1/v1", None, "chat_completions"),
    ("http://h:1/v1/completions", None, "http://h:1/v1", None, "completions"),
    ("http://h:1/v1/responses", None, "http://h:1/v1", None, "responses"),
    ("http://h:1/experimental/generate", None, "http://h:1", "http://h:1/experimental/generate", "chat_completions"),
    ("http://h:1/v1/chat/completions", "completions", "http://h:1", "http://h:1/v1/chat/completions", "completions"),
])
def test_nel_url_is_a_full_endpoint(url, protocol, base, endpoint, expect_protocol):
    cfg = ModelConfig(url=url, model="m", **({"protocol": protocol} if protocol else {}))
    assert (cfg.base_url, cfg.endpoint, cfg.protocol) == (base, endpoint, expect_protocol)


@pytest.mark.parametrize("key", ["url", "base_url"])
def test_responses_protocol_never_silently_switches_a_chat_url(key):
    with pytest.raises(ConfigError, match=r"not a Responses endpoint.*protocol: chat_completions"):
        validate_config(gsm8k({"type": "api", key: "http://h:1/v1/chat/completions", "model": "m",
                               "protocol": "responses"}))


def test_a_non_standard_path_is_posted_to_as_given(scripted_server, tmp_path):
    srv = scripted_server(lambda req: answer("6"), chat_paths=["/experimental/generate"])
    run, rows, _ = run_config(gsm8k(service(srv.url + "/experimental/generate")), tmp_path)
    assert run.error is None and rows[0]["reward"] == 1.0
    assert [r.path for r in srv.requests] == ["/experimental/generate"]


def test_completions_protocol_sends_a_text_prompt(scripted_server, tmp_path):
    srv = scripted_server(lambda req: answer("21 - 15 = 6"))
    svc = service(srv.base_url + "/completions", protocol="completions", generation={"max_tokens": 64, "top_p": 0})
    run, rows, trajectories = run_config(gsm8k(svc), tmp_path)
    assert run.error is None and rows[0]["reward"] == 1.0, rows
    (req,) = srv.requests
    assert req.path == "/v1/completions" and "messages" not in req.body and "tools" not in req.body
    assert req.body["prompt"].startswith("A baker makes 12 loaves")
    assert req.body["max_tokens"] == 64 and req.body["top_p"] == 0  # top_p: 0 accepted and sent as given
    assert [s["source"] for s in trajectories[0]["steps"]] == ["user", "agent"]


def test_completions_protocol_is_refused_for_the_tool_calling_solver():
    data = gsm8k(service("http://h:1/v1/completions"))
    data["benchmarks"][0]["solver"]["type"] = "tool_calling"
    with pytest.raises(ConfigError, match="protocol: completions.*solver.type: simple"):
        validate_config(data)


def test_solver_generation_is_merged_over_the_services(scripted_server, tmp_path):
    srv = scripted_server(lambda req: answer("6"))
    data = gsm8k(service(srv.base_url + "/chat/completions", generation={"temperature": 0.5, "max_tokens": 10}))
    data["benchmarks"][0]["solver"]["generation"] = {"max_tokens": 99, "seed": 7}
    run, rows, _ = run_config(data, tmp_path)
    assert run.error is None
    body = srv.requests[0].body
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.5, 99, 7)


def test_simple_solver_sends_the_prompt_alone(scripted_server, tmp_path):
    srv = scripted_server(lambda req: answer("The answer is 6."))
    run, rows, _ = run_config(gsm8k(service(srv.base_url + "/chat/completions")), tmp_path)
    (req,) = srv.requests
    assert [m["role"] for m in req.messages] == ["user"] and "tools" not in req.body
    assert rows[0]["turns"] == 1 and rows[0]["tool_calls"] == 0
