"""seoul-cluster CrossGuard policy pack (see policies/pack.py)."""
