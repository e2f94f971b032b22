"""What the benchmarks share: the paired A B B A design, a keep-alive load generator, clip_cider's extra tables."""
