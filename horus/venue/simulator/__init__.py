"""Local stand-ins for Polymarket services. A simulator is a peer of the engine: it imports nothing of
``horus`` outside this package, so it can be tested with a real client alone."""
