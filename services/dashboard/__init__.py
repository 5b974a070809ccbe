"""The dashboard service: orders, alerts and the live staff dashboard (case 4 of the seed)."""
