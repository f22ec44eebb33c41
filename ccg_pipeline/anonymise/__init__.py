"""Anonymisation for statistics (N-ANON, N-AGG): generalisation hierarchies and k-anonymity."""
