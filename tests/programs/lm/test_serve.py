"""The offline engine served over the OpenAI protocol: real DSPy client, concurrency, injected faults."""

import http.client
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dspy
import pytest

from programs.lm.offline import MODEL_NAME, OFFLINE_LABEL
from programs.lm.server import FAULTS, ServeConfig, serve_in_thread
from signatures import ChooseLabor, ProposeTaxSchedule, Schedule

ROOT = Path(__file__).resolve().parents[3]
SCHED = Schedule(cutoffs=[0.0, 11600.0], rates_percent=[10.0, 20.0])
SYSTEM = ("Your input fields are:\n1. `x` (str): anything\nYour output fields are:\n1. `hours` (float): hours\n"
          "All interactions will be structured in the following way, with the appropriate values filled in.\n\n"
          "[[ ## hours ## ]]\n{hours}\n\n[[ ## completed ## ]]")
PLANNER_SYSTEM = ("Your input fields are:\n1. `cutoffs` (list[float]):\nYour output fields are:\n"
                  "1. `rates_percent` (list[float]): rates\nAll interactions will be structured ...")


def post(url, messages, timeout=5.0, **extra):
    body = json.dumps({"model": "offline", "messages": messages, **extra}).encode()
    req = urllib.request.Request(url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def worker_messages(tag="x"):
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"[[ ## x ## ]]\n{tag}"}]


@pytest.fixture
def server():
    url, stop = serve_in_thread(latency_ms=0)
    yield url
    stop()


def labor(lm, persona="p", adapter=None):
    with dspy.context(lm=lm, adapter=adapter or dspy.ChatAdapter()):
        return dspy.Predict(ChooseLabor)(persona=persona, skill=38000.0, schedule=SCHED, last_rebate=0.0,
                                         history=[], best=[]).hours


def test_models_and_plain_completion(server):
    with urllib.request.urlopen(server + "/models", timeout=5) as r:
        models = json.loads(r.read())
    assert models["object"] == "list" and models["data"][0]["id"] == MODEL_NAME
    assert models["data"][0]["description"] == OFFLINE_LABEL
    status, _, raw = post(server, worker_messages(), temperature=0.0)
    body = json.loads(raw)
    assert status == 200 and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "[[ ## hours ## ]]\n40.0\n\n[[ ## completed ## ]]"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"] > 0
    # response_format json_object and list-of-parts content are honoured.
    msgs = [{"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
            {"role": "user", "content": [{"type": "text", "text": "[[ ## x ## ]]\ny"}]}]
    status, _, raw = post(server, msgs, temperature=0.0, response_format={"type": "json_object"})
    assert json.loads(json.loads(raw)["choices"][0]["message"]["content"]) == {"hours": 40.0}
    status, _, raw = post(server, "not a list")
    assert status == 400 and "messages" in json.loads(raw)["error"]["message"]


def test_dspy_client_through_http(server):
    lm = dspy.LM("openai/offline", api_base=server, api_key="x", cache=False)
    for adapter in (dspy.ChatAdapter(), dspy.JSONAdapter()):
        h = labor(lm, adapter=adapter)
        assert isinstance(h, float) and 25 <= h <= 55
    with dspy.context(lm=lm):
        p = dspy.ChainOfThought(ProposeTaxSchedule)(cutoffs=[0.0, 11600.0], current_rates_percent=[10.0, 20.0],
                                                   history=[], best=[])
    assert len(p.rates_percent) == 2 and all(0 <= r <= 100 for r in p.rates_percent) and p.reasoning


def test_served_answers_match_the_in_process_engine(server):
    from programs.lm.offline import offline_lm

    http_lm = dspy.LM("openai/offline", api_base=server, api_key="x", cache=False, temperature=1.0)
    assert labor(http_lm, "worker A") == labor(offline_lm(seed=0, temperature=1.0), "worker A")


def test_concurrent_requests_with_latency():
    url, stop = serve_in_thread(latency_ms=300)
    try:
        lm = dspy.LM("openai/offline", api_base=url, api_key="x", cache=False)
        with ThreadPoolExecutor(32) as ex:
            hours = list(ex.map(lambda i: labor(lm, f"worker {i}"), range(32)))
        seen = json.loads(urllib.request.urlopen(url.rstrip("/") + "/stats", timeout=5).read())
    finally:
        stop()
    assert len(hours) == 32 and all(0 <= h <= 100 for h in hours)
    # The server overlapped the 300 ms requests rather than serving them one by one.
    assert seen["requests"] == 32 and seen["max_in_flight"] > 1


@pytest.mark.parametrize("fault", ["http500", "http429"])
def test_http_error_faults(fault):
    url, stop = serve_in_thread(fail_rate=1.0, faults=[fault], seed=1)
    try:
        status, headers, raw = post(url, worker_messages())
    finally:
        stop()
    assert status == {"http500": 500, "http429": 429}[fault]
    assert "injected" in json.loads(raw)["error"]["message"]
    if fault == "http429":
        assert headers["Retry-After"] == "1"


def test_body_faults():
    url, stop = serve_in_thread(fail_rate=1.0, faults=["nonjson"])
    try:
        status, _, raw = post(url, worker_messages())
        assert status == 200
        with pytest.raises(ValueError):
            json.loads(raw)
    finally:
        stop()
    url, stop = serve_in_thread(fail_rate=1.0, faults=["truncated"])
    try:
        with pytest.raises(http.client.IncompleteRead):
            post(url, worker_messages())
    finally:
        stop()


def test_hang_fault_outlasts_the_client_timeout():
    url, stop = serve_in_thread(fail_rate=1.0, faults=["hang"], hang_s=120.0)
    try:
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            post(url, worker_messages(), timeout=0.5)
    finally:
        # A pending two-minute hang does not block shutdown (a thread, so a regression fails, not hangs).
        stopper = threading.Thread(target=stop, daemon=True)
        stopper.start()
        stopper.join(timeout=30)
        assert not stopper.is_alive()


def test_out_of_range_fault_reaches_the_program():
    url, stop = serve_in_thread(fail_rate=1.0, faults=["out_of_range"])
    try:
        lm = dspy.LM("openai/offline", api_base=url, api_key="x", cache=False)
        assert labor(lm) == 250.0  # well-formed but invalid: the worker module must clamp or reject it
        planner = [{"role": "system", "content": PLANNER_SYSTEM},
                   {"role": "user", "content": "[[ ## cutoffs ## ]]\n[0.0, 50000.0, 90000.0]"}]
        content = json.loads(post(url, planner)[2])["choices"][0]["message"]["content"]
        assert 140.0 in json.loads(content.split("\n")[1])
    finally:
        stop()


def test_fault_mix_is_seeded_and_retries_redraw():
    url, stop = serve_in_thread(fail_rate=0.5, seed=4, faults=["http500", "http429"])
    try:
        first = [post(url, worker_messages(f"r{i}"))[0] for i in range(40)]
    finally:
        stop()
    url, stop = serve_in_thread(fail_rate=0.5, seed=4, faults=["http500", "http429"])
    try:
        again = [post(url, worker_messages(f"r{i}"))[0] for i in range(40)]
        # The same body asked again is a fresh draw, so a client's retry can succeed.
        retries = [post(url, worker_messages("r0"))[0] for _ in range(12)]
    finally:
        stop()
    assert first == again  # replays exactly for a seed
    assert {200, 500, 429} <= set(first) and 8 < first.count(200) < 32
    assert 200 in retries and len(set(retries)) > 1


def test_config_validation():
    with pytest.raises(ValueError, match=r"fail_rate=1.5 is outside \[0, 1\]"):
        ServeConfig(fail_rate=1.5)
    with pytest.raises(ValueError, match="faults"):
        ServeConfig(faults=("meteor",))
    assert set(FAULTS) == {"http500", "http429", "hang", "truncated", "nonjson", "out_of_range"}


def test_cli_prints_its_address_and_serves():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen([sys.executable, "-m", "programs.serve", "--port", "0", "--latency-ms", "5"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith(f"serving {OFFLINE_LABEL} on http://127.0.0.1:") and line.endswith("/v1")
        url = line.split(" on ")[1]
        status, _, raw = post(url, worker_messages())
        assert status == 200 and "[[ ## hours ## ]]" in raw.decode()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes the pipes
    bad = subprocess.run([sys.executable, "-m", "programs.serve", "--fail-rate", "2"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "fail_rate=2.0 is outside [0, 1]" in bad.stderr


def test_stats_endpoint_counts_requests_faults_and_credentials():
    import hashlib

    url, stop = serve_in_thread(latency_ms=100, fail_rate=0.5, faults=["http500", "http429"], seed=4,
                                retry_after_s=0.25)
    try:
        def one(i):
            body = json.dumps({"model": "m", "messages": worker_messages(f"s{i}")}).encode()
            req = urllib.request.Request(url + "/chat/completions", data=body,
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": "Bearer sk-stat-test"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status, None
            except urllib.error.HTTPError as e:
                return e.code, e.headers.get("Retry-After")

        with ThreadPoolExecutor(6) as ex:
            results = list(ex.map(one, range(12)))
        with urllib.request.urlopen(url + "/stats", timeout=5) as r:
            stats = json.loads(r.read())
    finally:
        stop()
    codes = [c for c, _ in results]
    assert stats["requests"] == 12 and stats["in_flight"] == 0 and 2 <= stats["max_in_flight"] <= 6
    assert sum(stats["faults"].values()) == 12 - codes.count(200)
    assert stats["faults"].get("http429", 0) == codes.count(429)
    assert stats["status"] == {str(c): codes.count(c) for c in sorted(set(codes))}
    assert {ra for c, ra in results if c == 429} <= {"0.25"}  # a fractional Retry-After is sent as is
    tag = hashlib.sha256(b"sk-stat-test").hexdigest()[:12]
    assert stats["credentials_sha256_12"] == {tag: 12}  # a hash prefix, never the key
