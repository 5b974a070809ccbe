"""collab: collaborative editing on a CRDT (Yjs clients, pycrdt on the server); case 3 of the seed."""
