"""Cryptographic primitives behind a narrow API.

The Noise channel, the draft's AEAD payloads, padding buckets and CPace.
"""
