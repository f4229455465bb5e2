"""``python -m opsrl`` runs the CLI."""

from opsrl.cli.app import main

main()
