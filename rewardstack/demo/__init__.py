"""`rewardstack demo`: the verb (`command`), the run (`run`), its policy (`model`), its report (`report`).

The demo lives with the command rather than in trainer/: it starts local reward services (a
command's job) and then drives the trainer like any user would.
"""
