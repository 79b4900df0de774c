"""`python -m manurestore` runs the same CLI as the `manurestore` script."""

from manurestore.cli.app import main

if __name__ == "__main__":
    main()
