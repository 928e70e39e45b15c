"""The wiring: the composition root, which builds the dependencies and fills the ports."""
