"""Cauldron datasets as files: the schema and its rows, the published layout and its versions,
reading sources of any supported shape (adapters, quality columns), the row check every reader
shares, views for other trainers, statistics and export. The write stage, the mixer and
decontamination stand on it."""
