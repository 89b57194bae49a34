"""Flags and TOML files -> one frozen, checked RunConfig and the typed Cells it measures; nothing else reads argv."""
