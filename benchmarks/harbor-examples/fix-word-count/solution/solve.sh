#!/bin/bash
set -e
cat > /app/wordcount.py <<'PY'
"""Word counting for the report generator."""


def count_words(text: str) -> int:
    """Number of words in ``text``."""
    return len(text.split())
PY
