import sys

sys.path.insert(0, "/app")
from wordcount import count_words  # noqa: E402

CASES = {"": 0, "one": 1, "two words": 2, "a  b\n c": 3, "\ttabs\tand  spaces \n": 3, "   ": 0}
failed = [(text, count_words(text), want) for text, want in CASES.items() if count_words(text) != want]
for text, got, want in failed:
    print(f"count_words({text!r}) = {got}, expected {want}")
sys.exit(1 if failed else 0)
