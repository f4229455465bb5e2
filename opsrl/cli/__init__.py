"""The typer command-line interface: one module per command, wired together in app.py."""
