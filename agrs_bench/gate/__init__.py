"""Judge launches against launches: verdicts per cell, comparison.md, CI exports."""
