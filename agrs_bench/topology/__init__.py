"""Parallel layout -> rank lists of every group, by Megatron's rule; pure, with its own CLI."""
