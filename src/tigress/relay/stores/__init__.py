"""Mailbox stores: the abstract API (:mod:`.base`) and its implementations."""
