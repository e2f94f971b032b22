"""Trainer: recipes, datasets, model + LoRA, reward functions over HTTP, GRPO, evaluation."""
