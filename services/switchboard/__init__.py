"""The shared package: what every Switchboard service needs and nothing else.

One module per job: config (settings table), tokens (JWT), protocol (every message
type), closecodes and errors (what clients are told), presence, ratelimit, metrics,
health, routes (the route table), inbox (the service side of the gateway protocol).
"""
