"""seed_demo (the demo document)."""
