"""`python -m playworld`: the same command as `playworld`."""

from playworld.cli import main

if __name__ == "__main__":
    main()
