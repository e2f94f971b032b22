"""regex_format: rewards the structure of a completion (think/answer tags and friends)."""
