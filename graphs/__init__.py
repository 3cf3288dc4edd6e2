"""Backbones: frozen-graph import, .npy-built networks, the registry of known graphs."""
