"""The framework every reward service shares: app factory, limits, errors, metrics. No scoring logic."""
