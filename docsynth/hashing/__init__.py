"""Hashing algorithms: MinHash over shingles, perceptual image hashes, Hamming search, n-grams."""
