"""RecordEncoder: the lines a rollout is written as, the same wherever it ran."""

from __future__ import annotations

import pickle

import orjson

from react_eval.engine.lines import EncodedRecord, RecordEncoder, RecordSink
from react_eval.engine.results import RolloutResult
from react_eval.engine.rollout import RolloutRecord

KEY = b"sk-lines-test-0123456789abcdef"


def record(error: str | None = None, kind: str | None = None, trajectory: bytes | None = b'{"steps":[]}'):
    result = RolloutResult(run_id="r", benchmark="b", task_id="t1", repeat=2, rollout_id="x", error=error,
                           error_kind=kind, started_at="s", finished_at="f", final_message="done")
    return RolloutRecord(result=result, trajectory=trajectory)


def test_a_row_is_the_results_json_and_its_head_the_fields_the_parent_reads():
    done = RecordEncoder([])(record())
    assert orjson.loads(done.row) == record().result.model_dump(mode="json")
    assert done.head == {"task_id": "t1", "repeat": 2, "error_kind": None, "error": None, "passed": False,
                         "reward": None}
    assert done.trajectory == b'{"steps":[]}' and not done.fatal


def test_a_key_is_redacted_in_both_lines_and_in_the_result_an_error_is_raised_from():
    rec = record(error=f"401: bad key {KEY.decode()}", kind="auth_error",
                 trajectory=b'{"note":"' + KEY + b'"}')
    done = pickle.loads(pickle.dumps(RecordEncoder([KEY])))(rec)  # as a worker gets it
    assert KEY not in done.row and KEY not in done.trajectory and b"***" in done.trajectory
    assert done.head["error"] == "401: bad key ***" and done.fatal
    assert rec.result.error == "401: bad key ***"


def test_text_orjson_refuses_is_written_as_a_replacement_character():
    rec = record(error="bad \udc80 byte", kind="model_error")
    done = RecordEncoder([])(rec)
    assert orjson.loads(done.row)["error"] == "bad \ufffd byte" and rec.result.error == "bad \ufffd byte"


def test_the_sink_encodes_records_and_passes_encoded_ones_through():
    seen: list[EncodedRecord] = []
    sink = RecordSink(RecordEncoder([]), seen.append)
    sink(record())
    ready = EncodedRecord({"task_id": "t9", "repeat": 0}, b'{"task_id":"t9"}', None)
    sink(ready)
    assert seen[0].head["task_id"] == "t1" and seen[1] is ready
