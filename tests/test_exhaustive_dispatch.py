"""Every consumer handles every type its stream carries, checked by mypy: a type added to a
stream that some consumer does not handle fails type-checking.

Each probe is real consumer code under mypy with one message type added to the stream: the
source of a dispatch method, copied into a subclass where the stream's union has the extra
member (its ``assert_never`` default must then fail), and the registration of a handler of a
one-type stream on that stream widened (the handler cannot take the new type). Every probe is
also checked unwidened, where mypy must find nothing: the check is not vacuous. And a handler
registered on a stream of other types fails too: ``consume`` is typed with its stream's union.
"""

import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest
from mypy import api as mypy_api

from akros_k8s_worker.environments import EnvironmentService
from akros_k8s_worker.services import ServiceDeployer
from akros_msgs import CommandResult, EnvironmentCommand, ServiceCommand
from akros_slack.frontdoor import FrontDoor

ROOT = Path(__file__).resolve().parents[1]
NEW_TYPE = """
class ResizeRequested(Message):
    type: Literal["resize_requested"] = "resize_requested"
"""


@dataclass(frozen=True)
class DispatchProbe:
    """A dispatch method over a stream's union, re-checked with the union widened."""

    name: str
    method: Callable[..., Any]
    union_name: str
    union: Any
    imports: str = ""

    def module(self, *, widened: bool) -> str:
        owner = self.method.__qualname__.split(".")[0]
        members = [kind.__name__ for kind in get_args(self.union)]
        extra = " | ResizeRequested" if widened else ""
        body = textwrap.indent(textwrap.dedent(inspect.getsource(self.method)), "    ")
        return (
            "from typing import Literal, assert_never\n"
            f"from akros_msgs import Message, {', '.join(members)}\n{self.imports}\n"
            f"from {self.method.__module__} import {owner}\n{NEW_TYPE}\n"
            f"{self.union_name} = {' | '.join(members)}{extra}\n\n\n"
            f"class Probe({owner}):\n{body}"
        )


DISPATCHES = [
    DispatchProbe(
        "worker_environment_commands",
        EnvironmentService._apply_command,
        "EnvironmentCommand",
        EnvironmentCommand,
    ),
    DispatchProbe(
        "worker_service_commands", ServiceDeployer._apply_command, "ServiceCommand", ServiceCommand
    ),
    DispatchProbe(
        "slack_results",
        FrontDoor.on_result,
        "CommandResult",
        CommandResult,
        "from akros_slack import blocks\nfrom akros_slack.blocks import SlackMessage",
    ),
]

# One-type streams: the consumer's own registration line, on the stream or on a widened copy.
REGISTRATIONS = {
    "worker_scale_commands": (
        "from akros_k8s_worker.main import Worker",
        "ScaleDeployment",
        "SCALE_COMMANDS",
        "def register(worker: Worker) -> None:\n"
        "    worker.bus.consume(STREAM, 'k8s-worker')(worker._on_scale_command)\n",
    ),
    "poller_capacity": (
        "from akros_poller.main import Poller",
        "CapacityChanged",
        "CAPACITY",
        "def register(poller: Poller) -> None:\n"
        "    poller.bus.consume_batch(STREAM, 'poller')(poller._on_capacity)\n",
    ),
    "slack_notifications": (
        "from akros_slack.main import SlackService",
        "UnderusedEnvironment",
        "NOTIFICATIONS",
        "def register(app: SlackService) -> None:\n"
        "    app.bus.consume(STREAM, 'slack')(app._on_notification)\n",
    ),
}


# A consumer's handler registered on a stream that carries other types than it takes: the
# source, then the type the handler takes and one the stream carries (both in mypy's error).
MISREGISTRATIONS = {
    "worker_scale_handler_on_results": (
        "from akros_k8s_worker.main import Worker\n"
        "from akros_msgs.streams import RESULTS\n\n\n"
        "def register(worker: Worker) -> None:\n"
        "    worker.bus.consume(RESULTS, 'k8s-worker')(worker._on_scale_command)\n",
        "ScaleDeployment",
        "EnvironmentReady",
    ),
    "poller_capacity_handler_on_scale_commands": (
        "from akros_poller.main import Poller\n"
        "from akros_msgs.streams import SCALE_COMMANDS\n\n\n"
        "def register(poller: Poller) -> None:\n"
        "    poller.bus.consume_batch(SCALE_COMMANDS, 'poller')(poller._on_capacity)\n",
        "list[CapacityChanged]",
        "list[ScaleDeployment]",
    ),
}


def _registration_module(name: str, *, widened: bool) -> str:
    imports, member, stream, register = REGISTRATIONS[name]
    if widened:
        declared = (
            f"STREAM: Stream[{member} | ResizeRequested] = Stream("
            f"name='probe', description='probe', messages=({member}, ResizeRequested))"
        )
    else:
        declared = f"STREAM = {stream}"
    return (
        "from typing import Literal\n"
        f"from akros_msgs import Message, Stream, {member}\n"
        f"from akros_msgs.streams import {stream}\n{imports}\n{NEW_TYPE}\n"
        f"{declared}\n\n\n{register}"
    )


def _probes() -> dict[str, str]:
    modules: dict[str, str] = {}
    for probe in DISPATCHES:
        for widened in (False, True):
            suffix = "widened" if widened else "as_is"
            modules[f"probe_{probe.name}_{suffix}"] = probe.module(widened=widened)
    for name in REGISTRATIONS:
        for widened in (False, True):
            suffix = "widened" if widened else "as_is"
            modules[f"probe_{name}_{suffix}"] = _registration_module(name, widened=widened)
    for name, (source, _, _) in MISREGISTRATIONS.items():
        modules[f"probe_{name}"] = source
    return modules


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy's errors in each probe module, all checked in one run."""
    directory = tmp_path_factory.mktemp("probes")
    modules = _probes()
    for name, source in modules.items():
        (directory / f"{name}.py").write_text(source)
    stdout, stderr, _ = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--follow-imports=silent",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            *(str(directory / f"{name}.py") for name in modules),
        ]
    )
    assert not stderr, stderr
    errors: dict[str, list[str]] = {name: [] for name in modules}
    for line in stdout.splitlines():
        if found := re.match(r".*?(probe_\w+)\.py:\d+: error: (.*)", line):
            errors[found[1]].append(found[2])
    return errors


@pytest.mark.parametrize("probe", DISPATCHES, ids=lambda probe: probe.name)
def test_a_dispatch_that_misses_a_type_of_its_stream_fails_type_checking(
    mypy_errors: dict[str, list[str]], probe: DispatchProbe
) -> None:
    assert mypy_errors[f"probe_{probe.name}_as_is"] == []
    [error] = mypy_errors[f"probe_{probe.name}_widened"]
    assert 'Argument 1 to "assert_never" has incompatible type "ResizeRequested"' in error


@pytest.mark.parametrize("name", sorted(REGISTRATIONS))
def test_a_handler_of_a_one_type_stream_fails_type_checking_when_the_stream_gains_one(
    mypy_errors: dict[str, list[str]], name: str
) -> None:
    assert mypy_errors[f"probe_{name}_as_is"] == []
    [error] = mypy_errors[f"probe_{name}_widened"]
    assert "incompatible type" in error
    assert "ResizeRequested" in error


@pytest.mark.parametrize("name", sorted(MISREGISTRATIONS))
def test_a_handler_registered_on_a_stream_of_other_types_fails_type_checking(
    mypy_errors: dict[str, list[str]], name: str
) -> None:
    _, taken, carried = MISREGISTRATIONS[name]
    [error] = mypy_errors[f"probe_{name}"]
    assert "incompatible type" in error
    assert taken in error
    assert carried in error
