"""What a run shows and leaves behind: the live panel, metrics.jsonl, and the plots."""
