"""The hashmap rating module (work in progress: the engine is in rules.py)."""
