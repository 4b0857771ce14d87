"""`kubesim serve`: run the simulated cluster and write a kubeconfig that points at it."""

import argparse
import asyncio
import contextlib
import signal
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from akros_kubesim.cluster import ClusterFileError, load_cluster, load_manifests
from akros_kubesim.errors import ApiError
from akros_kubesim.server import Kubesim, ServerOptions, serve


def kubeconfig(server_url: str) -> dict[str, object]:
    """A kubeconfig for plain HTTP on loopback: kubesim does no authentication."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubesim", "cluster": {"server": server_url}}],
        "users": [{"name": "kubesim", "user": {}}],
        "contexts": [
            {
                "name": "kubesim",
                "context": {"cluster": "kubesim", "user": "kubesim", "namespace": "default"},
            }
        ],
        "current-context": "kubesim",
        "preferences": {},
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubesim", description="A Kubernetes API server simulator."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser(
        "serve", help="serve the Kubernetes API for a simulated cluster"
    )
    serve_command.add_argument(
        "--cluster", type=Path, help="cluster file (default: the one shipped with kubesim)"
    )
    serve_command.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    serve_command.add_argument(
        "--port", type=int, default=6443, help="port to bind; 0 picks a free one"
    )
    serve_command.add_argument(
        "--kubeconfig-out", type=Path, help="write a kubeconfig for this server here"
    )
    serve_command.add_argument(
        "--pod-start-seconds",
        type=float,
        help="delay from binding to Running (overrides the cluster file)",
    )
    serve_command.add_argument(
        "--failing-image-pattern", help="regular expression of images whose pull fails"
    )
    serve_command.add_argument(
        "--hpa-sync-seconds", type=float, default=15.0, help="interval of autoscaler decisions"
    )
    serve_command.add_argument(
        "--event-ttl-seconds", type=float, default=3600.0, help="how long events are kept"
    )
    serve_command.add_argument(
        "--manifests",
        type=Path,
        action="append",
        default=[],
        help="a YAML file of objects to create at start, after the cluster file's (repeatable)",
    )
    serve_command.add_argument(
        "--time-factor",
        type=float,
        default=1.0,
        help="scale of real-cluster durations (grace periods, pulls, back-offs); 0.01 for tests",
    )
    serve_command.add_argument(
        "--metrics-resolution-seconds",
        type=float,
        default=15.0,
        help="metrics-server's scrape interval: pods appear in metrics.k8s.io after one",
    )
    serve_command.add_argument(
        "--bookmark-seconds", type=float, default=5.0, help="interval of watch bookmarks"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    arguments = _parser().parse_args(argv)
    try:
        config = load_cluster(arguments.cluster)
        manifests = tuple(m for path in arguments.manifests for m in load_manifests(path))
    except (OSError, ClusterFileError, yaml.YAMLError) as error:
        sys.exit(f"kubesim: cannot use the cluster file or manifests: {error}")
    config = replace(config, objects=config.objects + manifests)
    if arguments.pod_start_seconds is not None:
        config = replace(config, pod_start_seconds=arguments.pod_start_seconds)
    if arguments.failing_image_pattern is not None:
        config = replace(config, failing_image_pattern=arguments.failing_image_pattern)
    options = ServerOptions(
        bookmark_seconds=arguments.bookmark_seconds,
        event_ttl_seconds=arguments.event_ttl_seconds,
        hpa_sync_seconds=arguments.hpa_sync_seconds,
        time_factor=arguments.time_factor,
        metrics_resolution_seconds=arguments.metrics_resolution_seconds,
    )
    try:
        sim = Kubesim(config, options)
    except ApiError as error:
        sys.exit(f"kubesim: cannot create a start-up object: {error.message}")
    asyncio.run(_serve(sim, arguments))


async def _serve(sim: Kubesim, arguments: argparse.Namespace) -> None:
    def announce(port: int) -> None:
        url = f"http://{arguments.host}:{port}"
        if arguments.kubeconfig_out is not None:
            arguments.kubeconfig_out.parent.mkdir(parents=True, exist_ok=True)
            temporary = arguments.kubeconfig_out.with_suffix(".tmp")
            temporary.write_text(yaml.safe_dump(kubeconfig(url), sort_keys=False))
            temporary.replace(arguments.kubeconfig_out)  # readers never see half a file
        print(f"kubesim serving {url}", flush=True)

    task = asyncio.create_task(serve(sim, arguments.host, arguments.port, announce))
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
