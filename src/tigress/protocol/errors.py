class ProtocolError(Exception):
    """Base of every error the protocol layer raises on bad input or a failed transfer."""


class InvitationError(ProtocolError):
    """A share URL (relay or direct invitation) or one of its parts is malformed or unsafe."""


class CodecError(ProtocolError):
    """A channel message is not canonical JSON, or is too large, too deep or of a forbidden type."""
