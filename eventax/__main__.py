"""`python -m eventax ...` is the `eventax` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
