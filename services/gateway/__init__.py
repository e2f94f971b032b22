"""gateway: one weighted reward over several services, in OpenRLHF's, slime's and our own formats."""
