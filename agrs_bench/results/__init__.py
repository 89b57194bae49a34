"""The file contract: results.json / cells.jsonl / csv, their schema, resume and baselines."""
