"""Number types for the params models of the services: finite, and never a boolean in disguise."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

# JSON parsing accepts `NaN` and `Infinity` literals and lax floats accept `true`: either would reach
# a weight or a threshold and come back as a null reward marked ok. Strict keeps ints (2 -> 2.0)
# and refuses bools and strings; allow_inf_nan=False refuses what is not finite. Both are 422s.
FiniteFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]
