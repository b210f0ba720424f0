"""User errors: one line that names the input and says what to do, exit status 2, no traceback."""

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable

USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130
BROKEN_PIPE_EXIT = 128 + 13  # SIGPIPE, what a shell reports for `cat` cut off by `head`

log = logging.getLogger("bert_ner")


class UserError(Exception):
    """A problem with the user's input (config, files, network) that they can fix.

    The message is shown as is; every line names the input and what to do next.
    """


def one_line(error: Exception) -> str:
    """transformers' own argument errors, some of which span lines, as one line."""
    return " ".join(str(error).split())


def require_packages(*modules: str, hint: str) -> None:
    """One line instead of an ImportError when a package this command needs is not installed, as
    in a deployment environment made from requirements-onnx.txt (no torch, no transformers).
    Looks the packages up without importing them."""
    import importlib.util

    if missing := [module for module in modules if importlib.util.find_spec(module) is None]:
        raise UserError(f"{', '.join(missing)} not installed: {hint}")


def shown_names(names: list[str]) -> str:
    """`'a', 'b', 'c' and 2 more`: the first three names, quoted, for a one-line error."""
    return ", ".join(f"'{name}'" for name in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone (poll reports an error on it)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout is no file (a test's capture)
        return False


def run_cli(body: Callable[[], int | None], debug: bool) -> int:
    """Run a command's body and turn user errors into a message and an exit status: the body's own
    status or 0; 2 for a user error, 130 for Ctrl-C, 141 when the reader of standard output went away."""
    try:
        status = body() or 0
        sys.stdout.flush()  # here, not at exit, where a closed pipe could only print a traceback
        return status
    except UserError as error:
        if debug:
            raise
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except BrokenPipeError:
        if debug or not _stdout_closed():  # another pipe (a socket, a worker) broke: a real error
            raise
        # Whoever read our output stopped (`infer.py ... | head`): stop quietly, as `cat` does. What
        # is still buffered goes nowhere, or Python's flush at exit would complain about the pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return BROKEN_PIPE_EXIT


class StderrHandler(logging.StreamHandler):
    """Writes to sys.stderr as it is when a message comes, not as it was when logging was set up
    (test runners and tools that call main() swap it, and may close the old one)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


@contextlib.contextmanager
def quiet_log():
    """bert-ner's log held to errors within: for work that repeats what was already said."""
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def setup_logging() -> None:
    """One quiet logger for our stages. Imports nothing heavy: infer.py must start fast."""
    # Read by datasets when it is first imported: its per-map progress bars are noise here.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    # Trainer asks for pinned memory, which means nothing without a GPU; say nothing about it on CPU.
    warnings.filterwarnings("ignore", message=".*pin_memory.*no accelerator is found")
    if not log.handlers:  # our own handler: the root logger (and whoever configured it) is left alone
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    # Under torchrun or accelerate launch, every process runs train.py; one of them tells the story.
    log.setLevel(logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING)
