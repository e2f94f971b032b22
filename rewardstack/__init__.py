"""The `rewardstack` command: a module (or folder) per verb; `cli` wires them, `errors` ends failures.

It may import trainer, proto and integrations, and starts services by module path only.
"""
