"""collab's management commands."""
