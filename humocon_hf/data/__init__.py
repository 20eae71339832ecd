"""Data sets: the built-in procedural motion-QA benchmark and loaders for real data."""
