"""The completion inside OpenRLHF's `query` (prompt + response, decoded with special tokens kept)."""

from __future__ import annotations

import re2

from proto.gateway_config import ExtractConfig, GatewayConfigError


class Extractor:
    def __init__(self, config: ExtractConfig):
        self.config = config
        try:
            self._regex = re2.compile(config.response_regex) if config.response_regex else None
        except re2.error as exc:
            raise GatewayConfigError(f"extract.response_regex does not compile under RE2: {exc}") from None

    def completion(self, query: str, prompt: str | None) -> str | None:
        """The response inside `query`, or None when neither the prompt nor a marker locates it."""
        if prompt and query.startswith(prompt):
            return self.strip_end(query[len(prompt):])
        start = max((query.rfind(m) + len(m) for m in self.config.response_start if m in query), default=-1)
        if self._regex is not None:
            for match in self._regex.finditer(query):
                start = max(start, match.end())
        if start < 0:
            return self.strip_end(query) if self.config.on_no_marker == "whole_query" else None
        return self.strip_end(query[start:])

    def strip_end(self, text: str) -> str:
        """Remove end-of-turn tokens (repeated, with whitespace between) from the end of `text`."""
        tokens = [t for t in self.config.end_tokens if t]
        while True:
            stripped = text.rstrip()
            for token in tokens:
                if stripped.endswith(token):
                    text = stripped[: -len(token)]
                    break
            else:
                return stripped
