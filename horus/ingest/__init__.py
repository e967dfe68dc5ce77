"""Leader-fill sources (chain logs, ...) and the exactly-once sink they share."""
