"""`python -m monitor.classify CORPUS.jsonl... [--out PATH]` rebuilds the packaged model."""

from monitor.classify.training import main

main()
