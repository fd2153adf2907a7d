"""lucca-connectors: the links between Lucca and the tools around it."""
