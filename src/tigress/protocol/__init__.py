"""Sans-IO protocol core: invitations, message codec, sender and receiver state machines."""
