"""Out-of-band wake-ups for devices that are not connected: webhooks and Web Push.

A notification says only "mailbox changed, sequence N" — never content.
"""
