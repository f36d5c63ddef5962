"""Real credential types: home (copy), hotel (provisioning token), car (owner signs)."""
