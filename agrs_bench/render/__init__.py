"""Read result files, draw: report.md and plots. Never touches a process group."""
