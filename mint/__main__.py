"""``python -m mint``: the same as the ``mint`` command."""

from mint.cli import main

if __name__ == "__main__":
    main(prog_name="mint")
