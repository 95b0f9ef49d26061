"""What each subcommand does, as plain functions (the CLI only parses flags)."""
