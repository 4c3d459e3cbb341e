"""The ``biprop`` command of the Python package (``biprop train ...``, or
``python -m biprop train ...``): the Rust binary's command line, the same
code, run in this process by the native module. ``biprop --help`` lists the
subcommands."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from typing import NoReturn, Optional, Sequence


def _command() -> Optional[str]:
    """The path of the installed ``biprop`` command, for the job scripts of
    ``biprop sweep --slurm``: inside Python the process's executable is the
    interpreter, not a program that takes biprop's arguments."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "biprop" and os.path.isfile(argv0):
        return os.path.abspath(argv0)
    return shutil.which("biprop", path=os.path.dirname(sys.executable))


def main(argv: Optional[Sequence[str]] = None) -> NoReturn:
    """Runs the command line on ``argv`` (default: ``sys.argv[1:]``) and exits
    with its code: 0 on success, 1 after an ``error: ...`` line, 2 for a
    usage error."""
    from . import _native

    args = list(sys.argv[1:] if argv is None else argv)
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        # Python only notes a SIGINT, to raise KeyboardInterrupt the next time
        # Python code runs, which is after the command has finished; the
        # default action ends the process at once, as it ends the binary. An
        # inherited "ignore" (a background job) stays, as it does for the binary.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    if "BIPROP_EXE" not in os.environ:
        exe = _command()
        if exe is not None:
            os.environ["BIPROP_EXE"] = exe
    # Python's own buffers first: the command writes to the file descriptors.
    sys.stdout.flush()
    sys.stderr.flush()
    # "biprop", not argv[0] (a script's or __main__.py's path), names the
    # program in usage lines, as the binary's do.
    sys.exit(_native.cli_main(["biprop", *args]))


if __name__ == "__main__":
    main()
