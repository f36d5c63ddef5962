"""Relay HTTP client, direct transport, and the transfer runner that drives the protocol."""
