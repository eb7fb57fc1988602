"""Question-answer benchmarks from a JSONL file: ``qa``, ``gsm8k`` and ``mcq``.

react-eval ships no copy of these datasets (no network at run time): pass the
file with ``--dataset FILE.jsonl``. One JSON object a line:

* ``qa``: ``question`` (or ``prompt``/``problem``), ``answer``; scored by exact match;
* ``gsm8k``: GSM8K's own rows, ``question`` and ``answer`` ending ``#### N``;
  scored by the last number of the response (NeMo Evaluator's GSM8K rule);
* ``mcq`` (MMLU-style): ``question``, ``choices`` (a list, or a letter -> text
  mapping) and ``answer`` (a letter, or the index of the right choice); scored
  by the chosen letter.

A row's id is its ``id`` / ``task_id`` / ``question_id`` field, else ``row-N``.
``scoring.metrics`` may grade with other scorers or an LLM judge instead.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, ClassVar

import orjson

from react_eval.benchmarks.base import Answer, Benchmark, RolloutEnv, Verification
from react_eval.scoring.config import ScorerMetric
from react_eval.scoring.scorers import mcq_extract, numeric_match, exact_match
from react_eval.types import Task

_LETTERS = string.ascii_uppercase[:10]


class QADatasetError(ValueError):
    """No dataset, or a row that cannot be used; the message names the file and line."""


def read_rows(path: Path, name: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise QADatasetError(f"{name}: cannot read --dataset {path}: {exc.strerror or exc}") from None
    rows = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise QADatasetError(f"{path}:{number}: corrupt JSON line: {exc}") from None
        if not isinstance(row, dict):
            raise QADatasetError(f"{path}:{number}: a row must be a JSON object")
        rows.append((number, row))
    if not rows:
        raise QADatasetError(f"{name}: {path} has no rows")
    return rows


class QABenchmark(Benchmark):
    name: ClassVar[str] = "qa"
    description: ClassVar[str] = "question/answer JSONL (--dataset): exact match of the final answer"
    verification = "final_message"
    needs_sandbox = False
    sandbox_tools_default = False  # answered from knowledge, not in a sandbox
    #: what the dataset is, for the message when none is given
    dataset_hint: ClassVar[str] = "rows with question and answer"
    instruction: ClassVar[str] = "\n\nEnd your reply with a line 'ANSWER: <your answer>'."

    def __init__(self, dataset: str | None = None):
        if not dataset:
            raise QADatasetError(f"{self.name}: react-eval ships no copy of this dataset: pass --dataset "
                                       f"FILE.jsonl ({self.dataset_hint}), or set options.dataset in the config")
        self.dataset = Path(dataset).expanduser()
        self._tasks = [self.row_task(row, f"{self.dataset}:{n}", i)
                       for i, (n, row) in enumerate(read_rows(self.dataset, self.name))]
        seen: set[str] = set()
        for task in self._tasks:
            if task.id in seen:
                raise QADatasetError(f"{self.dataset}: the id {task.id!r} is used twice; ids must be unique")
            seen.add(task.id)

    def tasks(self) -> list[Task]:
        return list(self._tasks)

    def row_task(self, row: dict[str, Any], where: str, index: int) -> Task:
        question = next((row[k] for k in ("question", "prompt", "problem") if isinstance(row.get(k), str)), None)
        if question is None or row.get("answer") is None:
            raise QADatasetError(f"{where}: a row needs a question (or prompt) and an answer")
        own = next((row[k] for k in ("id", "task_id", "question_id") if row.get(k) is not None), None)
        return Task(id=str(own) if own is not None else f"row-{index}", prompt=question + self.instruction,
                    metadata={"answer": self.reference(row, where), "question": question})

    def reference(self, row: dict[str, Any], where: str) -> str:
        return str(row["answer"])

    def score(self, task: Task, answer: Answer) -> Any:
        return exact_match(task, answer, ScorerMetric(name="exact_match"))

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        result = self.score(task, answer)
        return Verification(reward=result.value, details=result.details)


class GSM8KBenchmark(QABenchmark):
    name = "gsm8k"
    description = "GSM8K rows (--dataset): the last number of the response against the '#### N' answer"
    dataset_hint = "GSM8K rows: question, answer ending '#### N'"
    instruction = ""

    def reference(self, row: dict[str, Any], where: str) -> str:
        text = str(row["answer"])
        return text.rpartition("####")[2].strip() if "####" in text else text.strip()

    def score(self, task: Task, answer: Answer) -> Any:
        return numeric_match(task, answer, ScorerMetric(name="numeric_match"))


class MCQBenchmark(QABenchmark):
    name = "mcq"
    description = "multiple-choice rows (--dataset; MMLU-style): the chosen letter against the answer"
    dataset_hint = "rows with question, choices and the answer letter"
    instruction = "\n\nAnswer with the letter of the right choice, as 'Answer: X'."

    def row_task(self, row: dict[str, Any], where: str, index: int) -> Task:
        choices = row.get("choices")
        if isinstance(choices, dict):
            items = [(str(k).upper(), str(v)) for k, v in choices.items()]
        elif isinstance(choices, list) and 1 < len(choices) <= len(_LETTERS):
            items = list(zip(_LETTERS, map(str, choices)))
        else:
            raise QADatasetError(f"{where}: 'choices' must be a list of 2-10 options or a letter mapping")
        task = super().row_task(row, where, index)
        listing = "\n".join(f"{letter}. {text}" for letter, text in items)
        question = task.metadata["question"]
        return task.model_copy(update={"prompt": f"{question}\n\n{listing}{self.instruction}"})

    def reference(self, row: dict[str, Any], where: str) -> str:
        value = row["answer"]
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < len(_LETTERS):
                raise QADatasetError(f"{where}: answer index {value} is out of range")
            return _LETTERS[value]
        letter = str(value).strip().upper()
        if letter not in _LETTERS:
            raise QADatasetError(f"{where}: answer must be a letter A-J or a choice index, got {value!r}")
        return letter

    def score(self, task: Task, answer: Answer) -> Any:
        return mcq_extract(task, answer, ScorerMetric(name="mcq_extract"))
