"""What every family shares: contracts, registries, result types, metrics, seeding, devices, checkpoints."""
