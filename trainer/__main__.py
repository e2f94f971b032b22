"""`python -m trainer` is the `rewardstack` command."""

import sys

from trainer.cli import main

sys.exit(main())
