"""``POST /aggregate_metrics`` of a NeMo Gym resources server, after a gym:// run.

Gym's own collection ends by sending the server every verify response (with
the task's index in the dataset, ``_ng_task_index``, and the attempt's,
``_ng_rollout_index``) and keeping what it returns (``key_metrics``,
``agent_metrics``, ``group_level_metrics``). react-eval does the same (a server
answering 404/405 has no such route, and is left alone); rows without a reward (an
infrastructure failure) are not sent, as they have no verify response.
"""

from __future__ import annotations

from typing import Any

import orjson

from react_eval.gym.session import GymEndpoint
from react_eval.gym.transport import RolloutCookies

TASK_INDEX_KEY = "_ng_task_index"
ROLLOUT_INDEX_KEY = "_ng_rollout_index"


def verify_responses(rows: list[dict[str, Any]], task_index: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        if row.get("reward") is None or row.get("task_id") not in task_index:
            continue
        details = row.get("verification") or {}
        out.append({**{k: v for k, v in details.items() if k != "scoring"}, "reward": row["reward"],
                    TASK_INDEX_KEY: task_index[row["task_id"]], ROLLOUT_INDEX_KEY: int(row.get("repeat") or 0)})
    return out


async def aggregate_metrics(endpoint: GymEndpoint, rows: list[dict[str, Any]],
                            task_index: dict[str, int]) -> dict[str, Any] | None:
    """The server's aggregate metrics, None when it has no such route, or ``{"error": ...}``."""
    transport = endpoint.transport()
    cookies = RolloutCookies()
    try:
        body = orjson.dumps({"verify_responses": verify_responses(rows, task_index)})
        reply = await transport.request("POST", "/aggregate_metrics", body=body, cookies=cookies,
                                        timeout=endpoint.request_timeout)
        if reply.status in (404, 405):  # an older server without the route
            return None
        if reply.status != 200:
            return {"error": f"POST /aggregate_metrics answered {reply.status}: {reply.text[:500]}"}
        result = orjson.loads(reply.content)
        return result if isinstance(result, dict) else {"error": "POST /aggregate_metrics: not a JSON object"}
    except Exception as exc:  # noqa: BLE001 - the run's own metrics stand without it
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        await transport.aclose()
