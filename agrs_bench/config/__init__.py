"""Flags and TOML files -> one frozen, checked RunConfig; nothing else reads argv."""
