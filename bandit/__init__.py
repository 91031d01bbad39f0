"""Bandit policies: allocation and fusion math (numpy/scipy, no I/O)."""
