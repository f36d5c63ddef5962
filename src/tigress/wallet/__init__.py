"""Per-device keystore and credential store."""
