"""`akros env create|list|resize|stop|start|extend|delete|usage|logs|events|open`."""

import argparse
import json
import sys
import time
import webbrowser
from collections.abc import Callable, Sequence
from typing import Any

from akros_cli.api import ApiError, Gateway, gateway_url, token

POLL_S = 0.5


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="akros", description="Research environments on Akros.")
    parser.add_argument("--url", help="the gateway (default: AKROS_URL or `make run`'s)")
    parser.add_argument("--token", help="bearer token (default: AKROS_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON answers")
    groups = parser.add_subparsers(dest="group", required=True)
    env = groups.add_parser("env", help="research environments").add_subparsers(
        dest="command", required=True
    )

    create = env.add_parser("create", help="create an environment and wait until it is ready")
    create.add_argument("name")
    create.add_argument("--image", required=True, help="an image key from `GET /v1/catalog`")
    create.add_argument(
        "--profile",
        help="a resource profile from `GET /v1/catalog`: it supplies CPU, memory, GPUs and "
        "dedicated cores; the options below override it",
    )
    create.add_argument("--cpu", help="e.g. 4 or 500m (required without --profile)")
    create.add_argument("--memory", help="e.g. 16Gi (required without --profile)")
    create.add_argument("--gpus", type=int, help="whole GPUs (default: the profile's, else 0)")
    create.add_argument("--gpu-model", help="e.g. NVIDIA-A100-SXM4-80GB")
    create.add_argument(
        "--dedicated-cores",
        action="store_true",
        default=None,
        help="pin whole cores (default: the profile's, else not)",
    )
    create.add_argument("--volume-size", help="size of the work volume, e.g. 50Gi")
    create.add_argument(
        "--expires-at",
        help="when it is stopped (never deleted) unless extended, e.g. 2026-12-24T18:00Z",
    )
    create.add_argument("--no-wait", action="store_true", help="return once accepted")
    create.add_argument("--timeout", type=float, default=600, help="seconds to wait for ready")

    listing = env.add_parser("list", help="list environments")
    listing.add_argument("--user", help="(admins) someone else's")

    delete = env.add_parser("delete", help="delete an environment (its volume is kept)")
    delete.add_argument("name")
    delete.add_argument("--purge-volume", action="store_true", help="delete the volume too")
    delete.add_argument("--no-wait", action="store_true", help="return once accepted")
    delete.add_argument("--timeout", type=float, default=300)

    stop = env.add_parser(
        "stop",
        help="stop an environment: it keeps its volume, URL and name and holds no resources",
    )
    start = env.add_parser("start", help="start a stopped environment and wait until it is ready")
    for parser_of_verb in (stop, start):
        parser_of_verb.add_argument("name")
        parser_of_verb.add_argument("--user", help="(admins) someone else's")
        parser_of_verb.add_argument("--no-wait", action="store_true", help="return once accepted")
        parser_of_verb.add_argument("--timeout", type=float, default=600)

    resize = env.add_parser(
        "resize",
        help="change an environment's resources (a running one restarts with them, same volume)",
    )
    resize.add_argument("name")
    resize.add_argument("--cpu", help="e.g. 4 or 500m")
    resize.add_argument("--memory", help="e.g. 16Gi")
    resize.add_argument("--gpus", type=int, help="whole GPUs")
    resize.add_argument("--dedicated-cores", action=argparse.BooleanOptionalAction, default=None)
    resize.add_argument("--user", help="(admins) someone else's")
    resize.add_argument("--no-wait", action="store_true", help="return once accepted")
    resize.add_argument("--timeout", type=float, default=600)

    extend = env.add_parser(
        "extend", help="move an environment's expiry on (it is stopped, never deleted, at it)"
    )
    extend.add_argument("name")
    extend.add_argument(
        "--hours", type=float, help="how far (default, and at most: the platform's extension)"
    )
    extend.add_argument("--user", help="(admins) someone else's")
    extend.add_argument("--timeout", type=float, default=120)

    logs = env.add_parser("logs", help="what an environment's program printed")
    logs.add_argument("name")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines as they come"
    )
    logs.add_argument("--tail", type=int, default=100, help="how many of the last lines")
    events = env.add_parser(
        "events", help="what the cluster said about an environment, and why it is pending"
    )
    events.add_argument("name")
    for parser_of_verb in (logs, events):
        parser_of_verb.add_argument("--user", help="(admins) someone else's")
    opening = env.add_parser(
        "open", help="open an environment's URL in the browser, signed in (a one-time URL)"
    )
    opening.add_argument("name")
    opening.add_argument("--user", help="(admins) someone else's")
    usage = env.add_parser("usage", help="your quota and holding, or one environment's use")
    usage.add_argument("name", nargs="?", help="an environment: its recent use against requests")
    return parser


def _follow(
    gateway: Gateway, request_id: str, timeout_s: float, say: Callable[[str], None]
) -> dict[str, Any]:
    """Poll the request until it is applied or failed, saying each change of state, and of
    an environment's start stage (pulling image, ...) while it is pending."""
    deadline = time.monotonic() + timeout_s
    said = ""
    while True:
        request: dict[str, Any] = gateway.call("GET", f"/v1/requests/{request_id}")
        if (now := progress_line(request)) != said:
            said = now
            say(f"  {said}")
        if request["status"] != "pending":
            return request
        if time.monotonic() > deadline:
            raise ApiError(
                0, f"still pending after {timeout_s:.0f}s; follow /v1/requests/{request_id}"
            )
        time.sleep(POLL_S)


def progress_line(request: dict[str, Any]) -> str:
    """`pending`, `pending: pulling image (pulling registry/...:1)`, `applied`, ..."""
    status = str(request["status"])
    stage = request.get("stage")
    if status != "pending" or not stage:
        return status
    progress = request.get("progress")
    return f"{status}: {stage}" + (f" ({progress})" if progress else "")


_CREATE_OPTIONS = (
    "profile",
    "cpu",
    "memory",
    "gpus",
    "gpu_model",
    "dedicated_cores",
    "volume_size",
    "expires_at",
)


def create_body(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /v1/environments body of `env create`: only the options given, so that the
    gateway fills the rest from the profile, or from its defaults."""
    body: dict[str, Any] = {"name": args.name, "image": args.image}
    for option in _CREATE_OPTIONS:
        if (value := getattr(args, option)) is not None:
            body[option] = value
    return body


def _create(gateway: Gateway, args: argparse.Namespace, say: Callable[[str], None]) -> Any:
    accepted = gateway.call("POST", "/v1/environments", json=create_body(args))
    say(f"{args.name}: accepted as request {accepted['request_id']}")
    if args.no_wait:
        return accepted
    outcome = _follow(gateway, accepted["request_id"], args.timeout, say)
    if outcome["status"] == "failed":
        raise ApiError(0, f"{args.name} failed: {outcome['reason']}")
    environment = gateway.call("GET", f"/v1/environments/{args.name}")
    say(f"{args.name} is ready at {environment['url']} (on {environment['node']})")
    return environment


def _delete(gateway: Gateway, args: argparse.Namespace, say: Callable[[str], None]) -> Any:
    params = {"purge_volume": "true"} if args.purge_volume else {}
    accepted = gateway.call("DELETE", f"/v1/environments/{args.name}", params=params)
    say(f"{args.name}: deleting (request {accepted['request_id']})")
    if args.no_wait:
        return accepted
    outcome = _follow(gateway, accepted["request_id"], args.timeout, say)
    if outcome["status"] == "failed":
        raise ApiError(0, f"deleting {args.name} failed: {outcome['reason']}")
    kept = "deleted with its volume" if args.purge_volume else "deleted; its volume is kept"
    say(f"{args.name} {kept}")
    return outcome


def _environment_after(
    gateway: Gateway,
    args: argparse.Namespace,
    accepted: dict[str, Any],
    doing: str,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The environment once the accepted request is applied (ApiError saying what failed,
    if it failed), as the caller (``--user`` for admins) sees it."""
    outcome = _follow(gateway, accepted["request_id"], args.timeout, say)
    if outcome["status"] == "failed":
        raise ApiError(0, f"{doing} {args.name} failed: {outcome['reason']}")
    params = {"user": args.user} if args.user else {}
    environment: dict[str, Any] = gateway.call(
        "GET", f"/v1/environments/{args.name}", params=params
    )
    return environment


def _stop_or_start(gateway: Gateway, args: argparse.Namespace, say: Callable[[str], None]) -> Any:
    verb = args.command
    params = {"user": args.user} if args.user else {}
    accepted = gateway.call("POST", f"/v1/environments/{args.name}/{verb}", params=params)
    doing = "stopping" if verb == "stop" else "starting"
    say(f"{args.name}: {doing} (request {accepted['request_id']})")
    if args.no_wait:
        return accepted
    environment = _environment_after(gateway, args, accepted, doing, say)
    if verb == "stop":
        say(f"{args.name} is stopped; `akros env start {args.name}` brings it back")
    else:
        say(f"{args.name} is ready at {environment['url']} (on {environment['node']})")
    return environment


def _resize(gateway: Gateway, args: argparse.Namespace, say: Callable[[str], None]) -> Any:
    params = {"user": args.user} if args.user else {}
    body = {
        key: value
        for key in ("cpu", "memory", "gpus", "dedicated_cores")
        if (value := getattr(args, key)) is not None
    }
    accepted = gateway.call("PATCH", f"/v1/environments/{args.name}", params=params, json=body)
    say(f"{args.name}: resizing (request {accepted['request_id']})")
    if args.no_wait:
        return accepted
    environment = _environment_after(gateway, args, accepted, "resizing", say)
    resources = environment["resources"]
    say(
        f"{args.name} is {environment['status']} with {resources['cpu']} CPU, "
        f"{resources['memory']} memory, {resources['gpus']} GPUs"
    )
    return environment


def _extend(gateway: Gateway, args: argparse.Namespace, say: Callable[[str], None]) -> Any:
    params = {"user": args.user} if args.user else {}
    body = {} if args.hours is None else {"hours": args.hours}
    accepted = gateway.call(
        "POST", f"/v1/environments/{args.name}/extend", params=params, json=body
    )
    environment = _environment_after(gateway, args, accepted, "extending", say)
    say(f"{args.name} now expires at {environment['expires_at']}")
    return environment


def _logs(gateway: Gateway, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    """The log printed as it is, whatever --json says: it is the program's own text."""
    params: dict[str, Any] = {"tail": args.tail}
    if args.user:
        params["user"] = args.user
    path = f"/v1/environments/{args.name}/logs"
    if args.follow:
        for line in gateway.lines(path, params={**params, "follow": "true"}):
            out(line)
        return
    for line in gateway.text(path, params=params).splitlines():
        out(line)


def event_rows(document: dict[str, Any]) -> list[str]:
    """Why it is pending (when it is), then what the cluster said, oldest first, in words."""
    rows = []
    if document.get("why_pending"):
        rows += [f"Pending: {document['why_pending']}", ""]
    if not document["events"]:
        return [*rows, "the cluster has said nothing about it in the last hour"]
    rows.append(f"{'AT':<20} {'OBJECT':<40} WHAT")
    for event in document["events"]:
        mark = "!" if event["warning"] else " "
        times = f" (x{event['count']})" if event["count"] > 1 else ""
        rows.append(f"{event['at'][:19]:<20} {event['object']:<40}{mark}{event['words']}{times}")
    return rows


def environment_rows(environments: list[dict[str, Any]]) -> list[str]:
    """A plain table of environments, one line each."""
    header = f"{'NAME':<24} {'OWNER':<16} {'STATUS':<9} {'CPU':>6} {'MEMORY':>8} {'GPUS':>4}  URL"
    rows = [header]
    for env in environments:
        resources = env.get("resources") or {}
        rows.append(
            f"{env['name']:<24} {env['owner']:<16} {env['status']:<9} "
            f"{resources.get('cpu', ''):>6} {resources.get('memory', ''):>8} "
            f"{resources.get('gpus', 0):>4}  {env.get('url') or env.get('reason') or ''}"
        )
    return rows


def usage_rows(points: list[dict[str, Any]], last: int = 12) -> list[str]:
    """The most recent history points, one line each: use against requests."""
    if not points:
        return ["no usage sampled yet"]
    rows = [f"{'AT':<20} {'CPU USED/REQ':>14} {'MEM USED/REQ GiB':>18} {'GPU UTIL':>8}"]
    for point in points[-last:]:
        cpu = f"{point['cpu_used_millis'] / 1000:.2f}/{point['cpu_requested_millis'] / 1000:g}"
        memory = (
            f"{point['memory_used_bytes'] / 2**30:.1f}/{point['memory_requested_bytes'] / 2**30:g}"
        )
        utilisation = point.get("gpu_utilisation")
        gpu = "-" if utilisation is None else f"{utilisation:.0%}"
        rows.append(f"{point['at'][:19]:<20} {cpu:>14} {memory:>18} {gpu:>8}")
    return rows


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    return _parser().parse_args(argv)


def _open(
    gateway: Gateway,
    args: argparse.Namespace,
    say: Callable[[str], None],
    open_url: Callable[[str], bool],
) -> Any:
    """Ask for a one-time sign-in URL and hand it to the browser; print it only when no
    browser took it (it signs in whoever opens it first, within a minute)."""
    params = {"user": args.user} if args.user else {}
    result = gateway.call("POST", f"/v1/environments/{args.name}/open", params=params)
    if open_url(result["url"]):
        say(f"{args.name} opened in your browser, signed in.")
    else:
        say(f"No browser to open; open this within a minute (it works once): {result['url']}")
    return result


def run(
    argv: Sequence[str] | None,
    out: Callable[[str], None],
    open_url: Callable[[str], bool] = webbrowser.open,
) -> int:
    args = parse(argv)
    say = (lambda _: None) if args.json else out
    try:
        gateway = Gateway.connect(gateway_url(args.url), token(args.token))
        if args.command == "create":
            result = _create(gateway, args, say)
        elif args.command == "delete":
            result = _delete(gateway, args, say)
        elif args.command in {"stop", "start"}:
            result = _stop_or_start(gateway, args, say)
        elif args.command == "resize":
            result = _resize(gateway, args, say)
        elif args.command == "extend":
            result = _extend(gateway, args, say)
        elif args.command == "logs":
            _logs(gateway, args, out)
            return 0
        elif args.command == "events":
            params = {"user": args.user} if args.user else {}
            result = gateway.call("GET", f"/v1/environments/{args.name}/events", params=params)
            for line in event_rows(result):
                say(line)
        elif args.command == "open":
            result = _open(gateway, args, say, open_url)
        elif args.command == "list":
            params = {"user": args.user} if args.user else {}
            result = gateway.call("GET", "/v1/environments", params=params)
            for line in environment_rows(result["environments"]):
                say(line)
        elif args.name:
            result = gateway.call("GET", f"/v1/environments/{args.name}/usage")
            for line in usage_rows(result["points"]):
                say(line)
        else:
            result = gateway.call("GET", "/v1/me")
            say(_usage_text(result))
    except ApiError as error:
        print(f"akros: {error.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C ends `logs --follow`: the usual way out, not an error
        return 130
    if args.json:
        out(json.dumps(result, indent=2))
    return 0


def _usage_text(me: dict[str, Any]) -> str:
    quota, holding = me["quota"], me["holding"]
    lines = [f"{me['user']} ({me['role']})", f"{'':<14}{'HOLDING':>10} {'QUOTA':>10}"]
    for key in ("cpu", "memory", "gpus"):
        lines.append(f"{key:<14}{holding['resources'][key]!s:>10} {quota['resources'][key]!s:>10}")
    lines.append(
        f"{'environments':<14}{holding['environments']!s:>10} {quota['environments']!s:>10}"
    )
    return "\n".join(lines)


def main() -> None:
    sys.exit(run(sys.argv[1:], print))
