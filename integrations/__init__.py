"""Client-side adapters that let other trainers use the reward services (TRL, verl); import proto only."""
