"""The command line, ``fastdefocus <command>``: argparse only; the work is done by the layers below."""


def main(argv=None) -> int:
    """Entry point of the ``fastdefocus`` command."""
    from fastdefocus.cli.main import main as _main
    return _main(argv)
