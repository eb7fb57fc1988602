"""NeMo Evaluator's ``scoring:``: built-in scorers and LLM judges over a benchmark's answers."""
