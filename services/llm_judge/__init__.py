"""The llm_judge reward service: an LLM grades completions through an OpenAI-compatible API."""
