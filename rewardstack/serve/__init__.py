"""`rewardstack serve`: the verb (`command`), starting services (`launch`), checks before a start
(`checks`), and keeping them up (`supervisor`)."""
