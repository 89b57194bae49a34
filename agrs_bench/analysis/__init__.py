"""Pure arithmetic over samples and cells: statistics, nccl-tests measures, run summaries. No torch."""
