"""The fault table: every fault the suite injects, what must happen, and the
tests that check it. The conftest joins these rows with the outcomes of the
tests that ran and writes the result; ``tools/reliability_table.py`` renders it.

A test reference without ``[...]`` stands for every parametrization of that test.
"""

from __future__ import annotations

from dataclasses import dataclass

M = "tests/reliability/test_model_faults.py::"
G = "tests/reliability/test_gym_faults.py::"
S = "tests/reliability/test_sandbox_faults.py::"
H = "tests/reliability/test_hostile_agent.py::"
C = "tests/reliability/test_secrets.py::"
B = "tests/reliability/test_bad_input.py::"

#: what the rows also check (see tests/reliability/harness.py)
COMMON = ("rows that run rollouts check that the run finishes, that every (task, repeat) has exactly one result "
          "row and one trajectory, and that the other rollouts of the run score as expected; rows with sandboxes "
          "check that no sandbox process, child process or container of the run is left")


@dataclass(frozen=True)
class Row:
    area: str
    fault: str
    expected: str
    tests: tuple[str, ...]


def _transient(param: str) -> tuple[str, ...]:
    return (f"{M}test_transient_fault_is_retried_and_the_rollout_succeeds[{param}]",)


ROWS: list[Row] = [
    # ---- model endpoint
    Row("Model endpoint", "429 with Retry-After",
        "retried after the wait the server asked for (capped by retry_max_wait); the rollout goes on and scores 1; "
        "the attempts are recorded on the trajectory step",
        _transient("r429_retry_after") + (f"{M}test_429_retry_after_is_honoured",)),
    Row("Model endpoint", "429 without Retry-After", "retried after a jittered exponential backoff; rollout scores 1",
        _transient("r429")),
    Row("Model endpoint", "500", "retried; rollout scores 1", _transient("r500")),
    Row("Model endpoint", "502", "retried; rollout scores 1", _transient("r502")),
    Row("Model endpoint", "503", "retried; rollout scores 1", _transient("r503")),
    Row("Model endpoint", "connection reset (RST) mid-response", "retried; rollout scores 1", _transient("reset")),
    Row("Model endpoint", "response slower than request_timeout", "the request is abandoned at the timeout and retried; "
        "rollout scores 1", _transient("slow")),
    Row("Model endpoint", "truncated JSON body; body shorter than its Content-Length",
        "retried (both); rollout scores 1", _transient("truncated")),
    Row("Model endpoint", "200 with empty choices", "retried; rollout scores 1", _transient("empty_choices")),
    Row("Model endpoint", "retries exhausted (503 x3, timeout x3)",
        "model_error with 'model call failed after 3 attempts: HTTP 503 ...' / '... ModelTimeoutError ...'; "
        "reward null, excluded from the score (infra failure), re-run by --retry-errors",
        (f"{M}test_retries_exhausted_is_a_model_error_excluded_from_the_score",
         f"{M}test_the_run_finishes_with_every_rollout_once_and_infra_failures_excluded_from_the_score")),
    Row("Model endpoint", "finish_reason: length with a half-written tool call",
        "the call comes back to the model as an invalid_json error observation ('could not parse the arguments "
        "of file_write'); finish_reason recorded; the rollout continues and scores 1",
        (f"{M}test_model_mistake_becomes_an_error_observation_and_the_rollout_continues[length]",)),
    Row("Model endpoint", "invalid argument JSON",
        "invalid_json error observation ('not valid JSON'); the rollout continues and scores 1",
        (f"{M}test_model_mistake_becomes_an_error_observation_and_the_rollout_continues[bad_json]",)),
    Row("Model endpoint", "unknown tool",
        "unknown_tool error observation naming the tool; the rollout continues and scores 1",
        (f"{M}test_model_mistake_becomes_an_error_observation_and_the_rollout_continues[unknown_tool]",)),
    Row("Model endpoint", "400 context overflow",
        "not retried (one request); context_overflow with the server's message; graded like an answerless rollout",
        (f"{M}test_context_overflow_is_not_retried_and_ends_the_rollout_with_its_kind",)),
    Row("Model endpoint", "401 (key revoked mid-run)",
        "no retry, no new rollout: the run stops with exit code 3 and 'run stopped: ... HTTP 401 ... The key sent "
        "was read from the environment variable RELIABILITY_KEY'; rollouts finished before are kept; "
        "with a valid key --retry-errors runs exactly the missing and failed ones",
        (f"{M}test_401_stops_the_whole_run_naming_the_key_variable_and_retry_errors_completes_it",)),
    # ---- gym
    Row("Gym server", "down at the start",
        "every rollout ends tool_infra_error ('unreachable while seeding', address named) without a model call; "
        "the run completes; once the server is up --retry-errors completes every rollout with reward 1",
        (f"{G}test_server_down_at_the_start_then_retry_errors_completes_the_run",)),
    Row("Gym server", "dying mid-run (during a tool call)",
        "the rollouts it hits end tool_infra_error naming the server and the call; rollouts finished before are "
        "kept; with the server back on its port --retry-errors runs exactly the failed ones",
        (f"{G}test_server_dying_mid_run_fails_the_rollouts_it_hits_and_retry_errors_completes_them",)),
    Row("Gym server", "tool slower than tool_timeout",
        "a timeout error observation ('did not finish within 3s'); the rollout continues and scores 1",
        (f"{G}test_a_tool_slower_than_tool_timeout_is_a_timeout_observation_and_the_rollout_goes_on",)),
    Row("Gym server", "500 on one tool",
        "an http_5xx error observation with the server's message; the rollout continues and scores 1",
        (f"{G}test_a_tool_answering_500_is_an_error_observation_with_the_servers_message",)),
    Row("Gym server", "/verify 500",
        "verify_error with 'POST /verify answered HTTP 500: <server message>'; reward null (never a silent 0), "
        "excluded from the score",
        (f"{G}test_verify_500_is_a_verify_error_with_the_servers_message_never_a_silent_0",)),
    # ---- sandbox
    Row("Sandbox", "container killed mid-rollout",
        "sandbox_error 'the sandbox container ... is no longer running (status exited, exit code 137)'; no further "
        "model call; the other rollouts of the run score 1",
        (f"{S}test_a_container_killed_mid_rollout_is_a_sandbox_error_and_the_other_rollouts_continue",)),
    Row("Sandbox", "dockerd restarted mid-run (SIGTERM, live-restore off; a private engine of the test)",
        "the rollouts in flight end sandbox_error ('the Docker daemon at ... is unreachable ...'); the run completes; "
        "--retry-errors runs exactly those and removes the stopped containers the outage left",
        (f"{S}test_dockerd_restarted_mid_run_fails_the_rollouts_in_flight_and_retry_errors_completes_them",)),
    Row("Sandbox", "image missing",
        "sandbox_error \"docker image '...' not found: build or pull it first (`docker pull ...`)\"; no model call",
        (f"{S}test_a_missing_image_is_a_sandbox_error_saying_how_to_get_it",)),
    Row("Sandbox", "the sandbox disk fills up (4 MiB tmpfs)",
        "bash shows 'No space left on device', file_write returns a tool_error saying so; the agent frees space and "
        "goes on; rollouts before and after are unaffected; the disk is empty afterwards",
        (f"{S}test_a_full_sandbox_disk_is_a_clear_tool_error_and_the_run_goes_on",)),
    # ---- hostile agent (docker and bwrap)
    Row("Hostile agent", "fork bomb",
        "capped by the pids limit ('Resource temporarily unavailable'), killed at tool_timeout; the next command "
        "answers cleanly; the host can still fork",
        (f"{H}test_fork_bomb_is_capped_and_the_host_can_still_fork",)),
    Row("Hostile agent", "`yes` (unbounded output)",
        "killed at tool_timeout; the observation is capped (head and tail kept) and so are the files",
        (f"{H}test_unbounded_output_is_capped_in_the_observation_and_in_the_files",)),
    Row("Hostile agent", "sleep 10000", "killed at tool_timeout; no such process left on the host; the shell keeps its state",
        (f"{H}test_sleep_past_the_tool_timeout_is_killed_on_the_host",)),
    Row("Hostile agent", "`sleep 8; echo LATE > late.txt` past tool_timeout, beside `&`, `setsid`, "
        "`env -i setsid` and a child tree",
        "the rest of the command never runs (no late.txt); every process it started is killed; "
        "the shell keeps its cwd and variables",
        (f"{H}test_a_timed_out_command_is_stopped_whole_and_the_shell_keeps_its_state",)),
    Row("Hostile agent", "rm -rf / inside Docker",
        "only the container is damaged; its shell still answers; the host and the image are intact",
        (f"{H}test_rm_rf_root_inside_docker_leaves_the_host_and_the_image_intact",)),
    Row("Hostile agent", "writing to /etc of the host (local sandbox with bwrap)",
        "bash: 'Read-only file system'; file_write and the editor: 'outside the sandbox working directory'; "
        "nothing appears in /etc",
        (f"{H}test_writing_to_etc_of_the_host_through_bwrap_is_refused",)),
    Row("Hostile agent", "path traversal (../../) through file_read, file_write and the editor",
        "bwrap: refused as outside the working directory; docker: lands inside the container; the host canary "
        "is unchanged and its secret never shown",
        (f"{H}test_path_traversal_through_file_read_file_write_and_the_editor_stays_inside",)),
    Row("Hostile agent", "symlink escapes through file_read, file_write and the editor",
        "bwrap: refused ('resolves (through a symbolic link) to ..., which is outside'); docker: inside the "
        "container; the host canary is unchanged and its secret never shown",
        (f"{H}test_symlink_escapes_through_the_file_tools_and_the_editor_stay_inside",)),
    Row("Hostile agent", "network egress with network none",
        "every connection attempt fails inside; a listener on every host address accepts none",
        (f"{H}test_network_egress_is_impossible_with_network_none",)),
    Row("Hostile agent", "a 2 GB file_read",
        "refused from the size before any byte is read ('... 2147483648 bytes, over the ... limit; use head -n'); "
        "the editor's view likewise",
        (f"{H}test_a_2gb_file_read_is_refused_before_reading",)),
    Row("Hostile agent", "non-UTF-8 and NUL bytes in output",
        "undecodable bytes become U+FFFD, NUL becomes '\\\\0'; results and trajectories stay strict UTF-8 JSON",
        (f"{H}test_non_utf8_and_nul_bytes_come_back_as_safe_text_and_valid_json",)),
    # ---- runner crash
    Row("Runner crash", "kill -9 at random points, then --resume",
        "each (task, repeat) exactly once, with the rewards of an uninterrupted run; one trajectory per row",
        ("tests/engine/test_resume_and_shards.py::test_kill_9_at_random_points_then_resume_loses_and_duplicates_nothing",)),
    # ---- secrets
    Row("Secrets", "API key from --api-key-env (bwrap sandbox)",
        "the key is in no output file, log line or trajectory, never reaches the model or the sandbox's environment, "
        "and is replaced by *** where a server echoes it in an error; eval.json shows only the variable name",
        (f"{C}test_key_from_api_key_env_appears_nowhere",)),
    Row("Secrets", "API key from api_key: ${VAR} in YAML (Docker sandbox)",
        "as above; the redacted config in eval.json shows api_key: ***",
        (f"{C}test_key_from_yaml_env_expansion_appears_nowhere_and_the_config_shows_stars",)),
    # ---- bad config and data
    Row("Bad config and data", "malformed YAML; a field of the wrong type",
        "exit 2, 'eval.yaml:6:..: malformed YAML' / 'eval.yaml:11: benchmarks.0.solver.max_turns: ... integer'",
        (f"{B}test_malformed_yaml_names_the_file_line_and_column",
         f"{B}test_a_config_with_a_wrong_field_names_the_field_and_the_line")),
    Row("Bad config and data", "a dataset row missing fields",
        "exit 1, 'rows.jsonl:2: the row has no 'responses_create_params' object' (or '... has no 'input''); nothing runs",
        (f"{B}test_a_dataset_row_missing_fields_names_the_file_and_line",)),
    Row("Bad config and data", "a JSONL with one corrupt line (dataset, SWE-bench dataset, results/trajectories on --resume)",
        "exit 1 naming file and line ('rows.jsonl:3: corrupt JSON line', 'swe.jsonl:2: not a JSON object', "
        "'results.jsonl:2: corrupt JSON line'); reported, never skipped; nothing rewritten",
        (f"{B}test_a_dataset_with_one_corrupt_line_is_reported_not_skipped",
         f"{B}test_a_swebench_dataset_with_a_corrupt_line_names_the_file_and_line",
         f"{B}test_a_corrupt_line_in_results_on_resume_is_reported_and_nothing_is_rewritten")),
]
