"""Infrastructure failures of a run: how many a run may have before it counts
as failed, and the one-line cause of each error kind.

A run in which every rollout failed for an infrastructure reason (an
unreachable endpoint, a URL that answers 404, an image that is not built)
measured nothing: the CLI exits non-zero and says why, instead of printing a
table of zeros. ``max_infra_failures`` (config) or ``--max-infra-failures``
sets a stricter limit: a count (``3``) or a fraction of the rollouts
(``0.1`` or ``10%``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from react_eval.types import INFRA_ERROR_KINDS

INFRA_KINDS = frozenset(k.value for k in INFRA_ERROR_KINDS)
#: the word for a rollout that ended without an error (it may still have failed its task)
COMPLETED = "completed"


def parse_infra_limit(value: Any) -> int | float | None:
    """A count (int >= 0), a fraction in [0, 1] (float, or text ending in ``%``), or None."""
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise ValueError(f"max_infra_failures must be a count or a fraction, got {value!r}")
        return None
    text = str(value).strip()
    try:
        if text.endswith("%"):
            limit: int | float = float(text[:-1]) / 100
        elif isinstance(value, int) or text.isdigit():
            limit = int(text)
        else:
            limit = float(text)
    except ValueError:
        raise ValueError(f"max_infra_failures must be a count (3) or a fraction (0.1, 10%), got {value!r}") from None
    if isinstance(limit, float) and not 0.0 <= limit <= 1.0:
        raise ValueError(f"max_infra_failures as a fraction must be between 0 and 1 (or 0% and 100%), got {value!r}")
    if limit < 0:
        raise ValueError(f"max_infra_failures must not be negative, got {value!r}")
    return limit


def over_limit(summary: dict[str, Any], limit: int | float | None) -> str | None:
    """Why a benchmark's infrastructure failures fail the run, or None."""
    total, infra = int(summary.get("rollouts") or 0), int(summary.get("infra_failures") or 0)
    if total == 0 or infra == 0:
        return None
    if limit is None:
        if infra < total:
            return None
        return f"all {total} rollouts failed for infrastructure reasons: nothing was measured"
    if isinstance(limit, int):
        if infra <= limit:
            return None
        return f"{infra} of {total} rollouts failed for infrastructure reasons (more than --max-infra-failures {limit})"
    if infra / total <= limit:
        return None
    return (f"{infra} of {total} rollouts ({infra / total:.0%}) failed for infrastructure reasons "
            f"(more than --max-infra-failures {limit:.0%})")


def one_line(message: str | None, width: int = 240) -> str:
    """The first non-empty line of ``message``, cut to ``width`` characters."""
    line = next((ln.strip() for ln in (message or "").splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


def causes(rows: Iterable[dict[str, Any]]) -> dict[str, tuple[int, str]]:
    """Error kind -> (rollouts, the most frequent one-line message), in order of frequency."""
    counts: Counter[str] = Counter()
    messages: dict[str, Counter[str]] = {}
    for row in rows:
        kind = row.get("error_kind")
        if kind:
            counts[kind] += 1
            messages.setdefault(kind, Counter())[one_line(row.get("error"))] += 1
    return {kind: (n, messages[kind].most_common(1)[0][0]) for kind, n in counts.most_common()}
