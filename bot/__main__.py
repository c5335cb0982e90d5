"""`python -m bot` is the `fanline` command."""

from bot.cli import main

raise SystemExit(main())
