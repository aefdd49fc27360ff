"""Decontamination: the evaluation-set index, the hashes it compares, and checking a finished dataset."""
