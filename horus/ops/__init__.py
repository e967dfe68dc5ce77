"""Operating tools, apart from the engine: the local stack, the demo, the chaos proof, paper accounts, the topic
tap and the test chain. The CLI and the tests use them; the engine (streams, projections, domain, venue,
execution, sources) never imports them (an import-linter contract in pyproject.toml)."""
