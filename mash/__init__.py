"""The top layer: the `mash` command line, composed of the broker's and the producers' commands, and the steps
that need both (the simulated night, the fuzz run)."""
