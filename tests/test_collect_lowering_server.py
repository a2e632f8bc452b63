"""Tests of the reused lowering child (``_runner._LoweringServer``).

A fake worker speaks the real worker's protocol (a ready line, then one result
line per request line) and does what each request's family asks: answer with
its pid, print to stderr, hang, die or write junk. The last test runs the
real worker on real specs.
"""

import sys
import time

import pytest

from mlircost_classic.collect._runner import _Lowered, _LoweringServer

# The stderr drain thread must never die of a read racing ``close`` (it did:
# ``communicate`` read the same pipe while the thread was reading it).
pytestmark = pytest.mark.filterwarnings(
    "error::pytest.PytestUnhandledThreadExceptionWarning"
)

FAKE = r"""
import json, os, sys, time
sys.stderr.write("x" * 200000 + "\n")  # more than a pipe holds: must not block
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    family = json.loads(line)["family"]
    if family == "hang":
        time.sleep(60)
    if family == "die":
        sys.stderr.write("boom: the importer crashed\n")
        sys.stderr.flush()
        os._exit(3)
    if family == "junk":
        print("not json", flush=True)
        continue
    result = {"texts": {"linalg": str(os.getpid())}, "errors": {}, "seconds": {}}
    print(json.dumps(result), flush=True)
"""

SLOW_START = "import time; time.sleep(60)"


def _request(family):
    return {"family": family, "params": {}, "levels": ["linalg"]}


@pytest.fixture
def server():
    server = _LoweringServer([sys.executable, "-c", FAKE])
    yield server
    server.close()


def _pid(result):
    assert isinstance(result, _Lowered), result
    return int(result.texts["linalg"])


def test_one_child_serves_many_specs(server):
    pids = {_pid(server.lower(_request("ok"), 30)) for _ in range(5)}
    assert len(pids) == 1 and server.served == 5


def test_child_is_replaced_after_max_requests(server):
    server.max_requests = 2
    pids = [_pid(server.lower(_request("ok"), 30)) for _ in range(5)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_timeout_kills_the_child_and_the_next_spec_gets_a_fresh_one(server):
    first = _pid(server.lower(_request("ok"), 30))
    start = time.monotonic()
    # A child that hangs uses no CPU: the wall-clock ceiling stops it.
    assert server.lower(_request("hang"), 0.5).startswith("timed out after 0.5 s: ")
    assert time.monotonic() - start < 10
    assert server.proc is None
    assert _pid(server.lower(_request("ok"), 30)) != first


def test_a_dying_child_reports_its_exit_code_and_stderr(server):
    first = _pid(server.lower(_request("ok"), 30))
    message = server.lower(_request("die"), 30)
    assert message.startswith("lowering process exited with 3:")
    assert "boom: the importer crashed" in message
    assert _pid(server.lower(_request("ok"), 30)) != first


def test_an_unreadable_result_is_a_message_not_a_crash(server):
    message = server.lower(_request("junk"), 30)
    assert message.startswith("lowering process wrote an unreadable result")
    assert server.proc is None
    assert isinstance(server.lower(_request("ok"), 30), _Lowered)


def test_a_child_that_never_gets_ready_times_out():
    server = _LoweringServer([sys.executable, "-c", SLOW_START])
    try:
        assert server.lower(_request("ok"), 0.5).startswith("timed out after 0.5 s")
        assert server.proc is None
    finally:
        server.close()


def test_a_child_that_exits_while_idle_is_replaced(server):
    first = _pid(server.lower(_request("ok"), 30))
    server.proc.kill()
    server.proc.wait()
    assert _pid(server.lower(_request("ok"), 30)) != first


@pytest.mark.collect
def test_real_worker_lowers_the_same_text_as_a_fresh_child():
    pytest.importorskip("torch_mlir")
    from mlircost_classic.collect._families import sample_specs
    from mlircost_classic.collect._runner import LEVELS

    specs = sample_specs(["elementwise", "mlp", "reduction"], 3, seed=0, small=True)
    requests = [
        {"family": s.family, "params": s.params, "levels": list(LEVELS)} for s in specs
    ]
    reused = _LoweringServer()
    try:
        in_turn = [reused.lower(r, 300) for r in requests]
    finally:
        reused.close()
    for request, result in zip(requests, in_turn, strict=True):
        fresh = _LoweringServer()
        try:
            alone = fresh.lower(request, 300)
        finally:
            fresh.close()
        assert isinstance(result, _Lowered) and isinstance(alone, _Lowered)
        assert result.texts == alone.texts and result.errors == alone.errors
        assert "func.func @main" in result.texts["linalg"]
