"""`akros-gateway`: serve the HTTP API, or manage bearer tokens.

akros-gateway                                       serve on AKROS_GATEWAY_HOST:PORT
akros-gateway token issue --user alice [--role admin]   prints the new token
akros-gateway token revoke --user alice | --prefix akros_AbCd1234
akros-gateway token list
"""

import argparse
import sys
from collections.abc import Sequence

import uvicorn
from redis.asyncio import Redis

from akros_bus import configure_logging
from akros_bus.collector import freeze_startup_objects
from akros_bus.runner import EVENT_LOOP, run_until_complete
from akros_gateway.app import create_app
from akros_gateway.settings import GatewaySettings
from akros_gateway.tokens import TokenStore
from akros_msgs import Role


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="akros-gateway", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP API (the default)")
    token = commands.add_parser("token", help="issue, revoke or list bearer tokens")
    actions = token.add_subparsers(dest="action", required=True)
    issue = actions.add_parser("issue", help="issue a token and print it (shown only once)")
    issue.add_argument("--user", required=True)
    issue.add_argument(
        "--role", choices=[Role.RESEARCHER.value, Role.ADMIN.value], default=Role.RESEARCHER.value
    )
    revoke = actions.add_parser("revoke", help="revoke a user's tokens, or one by its prefix")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--user")
    which.add_argument("--prefix", help="the token's first characters, as `token list` shows")
    actions.add_parser("list", help="list tokens (prefix, user, role, created)")
    return parser


async def _token_command(settings: GatewaySettings, arguments: argparse.Namespace) -> int:
    redis = Redis.from_url(str(settings.redis_url))
    store = TokenStore(redis)
    try:
        if arguments.action == "issue":
            issued = await store.issue(arguments.user, Role(arguments.role))
            print(issued.token)
            print(f"issued a {arguments.role} token for {arguments.user}", file=sys.stderr)
        elif arguments.action == "revoke":
            revoked = await store.revoke(user=arguments.user, prefix=arguments.prefix)
            print(f"revoked {revoked} token(s)")
            return 0 if revoked else 1
        else:
            for record in (await store.records()).values():
                created = record.created_at.isoformat(timespec="seconds")
                print(f"{record.prefix}  {record.user:<30}  {record.role.value:<10}  {created}")
    finally:
        await redis.aclose()
    return 0


def serve(settings: GatewaySettings) -> None:
    configure_logging(settings.service_name, settings.log_level)
    app = create_app(settings)
    freeze_startup_objects()
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        loop=EVENT_LOOP,
        log_config=None,
        # Uvicorn's access log lines carry no headers, so tokens never reach the logs.
        access_log=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    settings = GatewaySettings()
    if arguments.command == "token":
        return run_until_complete(_token_command(settings, arguments))
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
