"""Built-in judge rubrics, one YAML file each; `rubrics.py` loads them by file name."""
