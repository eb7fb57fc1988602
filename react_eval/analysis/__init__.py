"""What users do after a run: metrics, comparisons, reports and a trajectory viewer.

* :mod:`react_eval.analysis.runs` -- loading a benchmark directory;
* :mod:`react_eval.analysis.compare` (and :mod:`~react_eval.analysis.config_diff`) --
  ``react-eval compare BASE CAND``;
* :mod:`react_eval.analysis.report` and :mod:`react_eval.analysis.charts` --
  ``react-eval report RUN_DIR`` (report.md, self-contained report.html);
* :mod:`react_eval.analysis.viewer` -- ``react-eval view RUN_DIR [OTHER]``: the page
  (package data in ``analysis/static``), the list's per-rollout summaries
  (:mod:`~react_eval.analysis.viewer_index`) and the "why" line of each rollout
  (:mod:`~react_eval.analysis.why`).

The metrics themselves live in :mod:`react_eval.metrics` (also used by the
engine for eval.json). These modules read result files; they import the engine's
result helpers and the trajectory models, never the CLI.
"""
