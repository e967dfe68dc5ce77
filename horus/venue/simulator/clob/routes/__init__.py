"""The simulator's HTTP routes, one router per concern; app.create_app mounts them all."""
