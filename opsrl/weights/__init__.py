"""Shipped pretrained checkpoints: ``<name>.safetensors`` with a ``<name>.json`` metadata sidecar."""
