"""A command that prints as it goes (a followed log), run for a test to read line by line."""

import contextlib
import subprocess
from collections.abc import Iterator, Mapping, Sequence


@contextlib.contextmanager
def followed(
    command: Sequence[str], env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """The running command; killed (by its own pid) if the test leaves it running."""
    process = subprocess.Popen(
        list(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
