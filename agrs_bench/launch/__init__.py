"""Starting the ranks: self-launch under torchrun, signal forwarding, the process tree.

The self-launch parent checks the run, takes its directory, starts torchrun on every local GPU,
relays its stderr, forwards SIGINT/SIGTERM/SIGHUP and waits until no process of the launch is left."""
