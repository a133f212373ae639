"""``python -m mint.cli``: the same as the ``mint`` command (handy under ``torchrun`` / ``accelerate launch``)."""

from mint.cli import main

if __name__ == "__main__":
    main(prog_name="mint")
