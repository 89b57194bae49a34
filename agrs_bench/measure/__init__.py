"""On the ranks: buffers, kernels on role streams, the timing engine, checks, telemetry, watchdog."""
