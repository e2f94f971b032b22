"""Imported by the workers' fork server only: one equivalence check warms math-verify's parser there.

Every worker is forked from that server, so each starts warm: a worker killed at its time limit or
at a request's deadline is replaced in tens of milliseconds instead of a hundred and more, and the
request after it finds every worker free sooner. The service process never imports this module
(math-verify and sympy stay out of it).
"""

import logging

from services.math_equiv.worker import handle

logging.getLogger("math_verify").setLevel(logging.ERROR)
handle(("equiv", ("\\frac{1}{2}",), "0.5"))
