"""Agency-side publishing: the async SDK, the CLI and the synthetic generator."""
