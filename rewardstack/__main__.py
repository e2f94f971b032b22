"""`python -m rewardstack` is the `rewardstack` command."""

import sys

from rewardstack.cli import main

sys.exit(main())
