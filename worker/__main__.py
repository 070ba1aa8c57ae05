"""``python -m worker`` is ``mmw``."""

from worker.cli import main

main()
