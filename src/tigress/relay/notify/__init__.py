"""Out-of-band wake-ups for devices that are not connected: webhooks and Web Push.

A notification says only "mailbox changed, sequence N" — never content.
"""

from tigress.relay.notify.base import NoPushDispatcher, NotificationTokenError, PushDispatcher
from tigress.relay.notify.config import PushConfig, PushConfigError
from tigress.relay.notify.dispatcher import BackgroundPushDispatcher
from tigress.relay.notify.vapid import VapidKey, VapidKeyError

__all__ = [
    "BackgroundPushDispatcher",
    "NoPushDispatcher",
    "NotificationTokenError",
    "PushConfig",
    "PushConfigError",
    "PushDispatcher",
    "VapidKey",
    "VapidKeyError",
]
