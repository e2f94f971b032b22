"""gateway: one weighted reward over several services, spoken in OpenRLHF's, slime's and our own wire formats."""
