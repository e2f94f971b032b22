"""`rewardstack score`: the verb (`command`), reading the input (`input`), scoring into the partial
file and resuming (`run`), the summary and exit verdict (`report`)."""
