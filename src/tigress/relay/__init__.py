"""The relay server: opaque mailboxes, stores, notifications. Never imports crypto or protocol."""
