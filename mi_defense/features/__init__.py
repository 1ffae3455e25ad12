"""Fixed, data-independent feature maps (no trainable weights, fitted to no data)."""
