"""collab's unit tests: real Redis, real database, no mocks."""
