"""`python -m devstack run|token|add-user|outbox|events`: the embedded stack behind `make run`, `make token`, ..."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from devstack import lifecycle

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_STACK_FILE = PROJECT_DIR / ".local" / "stack.json"
LOCAL_STAGE = "local"
# `external`: the stack runs no job worker of its own (`python -m devstack worker` does).
JOBS_WORKER_ENV = "DEVSTACK_JOBS_WORKER"

log = logging.getLogger("devstack")


def _stack_file() -> Path:
    return Path(os.environ.get("STACK_FILE", DEFAULT_STACK_FILE))


def _read_stack(command: str) -> dict[str, Any]:
    path = _stack_file()
    info = lifecycle.read_stack_file(path)
    if info is None:
        sys.exit(f"{command}: {path} not found: start the stack first with `make run`")
    pid = info.get("pid")
    if isinstance(pid, int) and not lifecycle.is_a_stack(pid):
        sys.exit(f"{command}: the stack that wrote {path} (pid {pid}) is no longer running: start one with `make run`")
    return info


def _aws_error(exc: Exception) -> str:
    """One line for an AWS error: its code and message, or what went wrong on the way."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code')}: {error.get('Message')}"
    return str(exc)


def _emulator_credentials() -> None:
    # The emulator accepts any credentials; fixed fake ones keep real ones out of reach.
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)


def run(host: str, port: int, moto_port: int) -> None:
    stack_path = _stack_file()
    # Refused before anything is started or written: a second start must leave the running
    # stack, its port and its stack file alone.
    try:
        lifecycle.refuse_if_running(stack_path)
        listener = lifecycle.claim_port(host, port)
    except lifecycle.AlreadyRunning as exc:
        sys.exit(f"Cannot start the local stack: {exc}")
    # Only now, once this start is not refused: the previous run's invitations and events name
    # users of a pool and table that are gone; `make outbox` and `make events` show this run's.
    for written_by_a_run in (_outbox_file(), _events_file()):
        written_by_a_run.unlink(missing_ok=True)
    try:
        _serve(listener, host, moto_port, stack_path)
    except KeyboardInterrupt:
        pass


def _serve(listener: Any, host: str, moto_port: int, stack_path: Path) -> None:
    from chalice.cli import factory as chalice_factory
    from chalice.deploy.validate import validate_routes

    from chalicelib.config import cors_allow_origins
    from devstack import cognito_emulation, jobs, moto_patches, resources, streams
    from devstack.gateway import serve_app
    from devstack.motoserver import MotoServer
    from infra.invitation import invitation
    from infra.stages import load_limits

    _emulator_credentials()
    region = os.environ.get("AWS_REGION", "us-east-1")
    cognito_emulation.apply()
    moto = None
    poller = None
    job_poller = None
    written: dict[str, Any] | None = None
    try:
        try:
            moto = MotoServer(host, moto_port).start()
        except moto_patches.MotoVersionMismatch as exc:
            sys.exit(f"Cannot start the local stack: {exc}")
        # One client per service for all the stack sets up and polls here (making one costs 10-40 ms).
        clients = resources.emulator_clients(moto.url, region)
        invitation_text = invitation(load_limits())
        cli = chalice_factory.CLIFactory(str(PROJECT_DIR), environ=os.environ)
        stage_env = cli.create_config_obj(chalice_stage_name=LOCAL_STAGE).environment_variables
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": moto.url,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                # Where the app writes the invitations Cognito would mail (chalicelib/adapters/local_outbox.py),
                # worded as the stage's pool words them (with SES; infra/invitation.py).
                "OUTBOX_FILE": str(_outbox_file()),
                "INVITATION_EMAIL_SUBJECT": invitation_text["EmailSubject"],
                "INVITATION_EMAIL_MESSAGE": invitation_text["EmailMessage"],
            }
        )
        stack = resources.create(
            moto.url,
            region,
            stage_env["TABLE_NAME"],
            stage_env.get("AVATAR_BUCKET", "users-api-local-avatars"),
            "",
            cors_allow_origins({**os.environ, **stage_env}),
            clients,
        )
        os.environ.update(
            {
                "USER_POOL_ID": stack.user_pool_id,
                "USER_POOL_CLIENT_ID": stack.user_pool_client_id,
                "USER_POOL_ARN": f"arn:aws:cognito-idp:{region}:123456789012:userpool/{stack.user_pool_id}",
                "CURSOR_SECRET_ARN": stack.cursor_secret_arn,
            }
        )
        config = cli.create_config_obj(chalice_stage_name=LOCAL_STAGE)
        app = config.chalice_app
        validate_routes(app.routes)
        # The event source mapping `chalice local` lacks: the table's stream to the app's consumer.
        poller = streams.start(app, moto, region, stage_env, _events_file(), clients)
        # The job queue's event source mapping, likewise (devstack/jobs.py); JOBS_WORKER=external
        # leaves the worker to `python -m devstack worker` (the bulk bench kills it mid-import).
        bucket = stage_env.get("AVATAR_BUCKET", "users-api-local-avatars")
        in_process = os.environ.get(JOBS_WORKER_ENV, "in-process") != "external"
        job_poller = jobs.start(app, moto.url, region, stage_env, bucket, in_process, clients)
        serve_app(listener, app, config)
        bound_port = listener.server_address[1]
        api_url = f"http://{host}:{bound_port}"
        # The patches moto runs with here, as checked on moto itself: the e2e tests assert them.
        info = {
            **stack.to_dict(),
            "api_url": api_url,
            "docs_url": f"{api_url}/docs",
            "emulator_patches": moto_patches.active(),
            "outbox_file": str(_outbox_file()),
            "events_file": str(_events_file()),
            "audit_table_name": stage_env["AUDIT_TABLE_NAME"],
            "event_bus_name": stage_env["EVENT_BUS_NAME"],
            "jobs_table_name": stage_env["JOBS_TABLE_NAME"],
            "jobs_queue_name": stage_env["JOBS_QUEUE"],
            "jobs_queue_url": os.environ["JOBS_QUEUE_URL"],
            "jobs_dead_letter_queue_url": os.environ["JOBS_DEAD_LETTER_QUEUE_URL"],
            # Where the stream's mapping sends what it gave up on; `make replay-dlq` reads it.
            "dead_letter_queue_url": clients("sqs").get_queue_url(QueueName=streams.LOCAL_DEAD_LETTER_QUEUE)[
                "QueueUrl"
            ],
            # Whose file this is: a second start refuses while this process lives, and this
            # process removes the file at exit only if it is still the one it wrote.
            "pid": os.getpid(),
            "instance": lifecycle.new_instance_id(),
        }
        lifecycle.write_stack_file(stack_path, info)
        written = info
        _print_welcome(info)
        listener.serve_forever()
    finally:
        listener.server_close()
        if poller is not None:
            poller.stop()
        if job_poller is not None:
            job_poller.stop()
        if written is not None:
            lifecycle.remove_own_stack_file(stack_path, written)
        if moto is not None:
            moto.stop()
            print("Stopped the API and the embedded AWS stack.", flush=True)


def _print_welcome(info: dict[str, Any]) -> None:
    url = info["api_url"]
    print(
        f"""
User Management API on {url}  (embedded AWS stack at {info["aws_endpoint_url"]}; data lives in memory)
API docs:      {info["docs_url"]}  (Swagger UI: Authorize takes the token `make -s token` prints)
Stack details: {_stack_file()}
Seeded admin:  {info["admin_username"]} / {info["admin_password"]}
Seeded member: {info["member_username"]} / {info["member_password"]}
Mail:          `make outbox` shows the invitations, resets and email codes that would be mailed ({info["outbox_file"]})

In another shell:
  TOKEN=$(make -s token)
  curl -s {url}/hello
  curl -s -X POST {url}/users -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
       -d '{{"name": "Ada Lovelace", "email": "ada@example.com"}}'
  curl -s {url}/users -H "Authorization: Bearer $TOKEN"

Ctrl-C stops everything.
""",
        flush=True,
    )


# What each command's line says when an argument is missing: the command as the README types it.
USER_EXAMPLE = "make user EMAIL=jo@example.com PASSWORD='Another-passw0rd!' (ADMIN=1: an admin; NAME=...)"
TOKEN_EXAMPLE = (
    "make token USER=jo@example.com PASSWORD='Another-passw0rd!' (neither: the seeded admin's token; MEMBER=1: "
    "the member's)"
)


def _missing(command: str, names: list[str], example: str) -> None:
    if names:
        sys.exit(f"{command}: {' and '.join(names)} {'is' if len(names) == 1 else 'are'} missing: {example}")


def password_policy() -> str:
    """The pool's password policy in words, from infra/limits.json (what the local pool and every
    deployed stage's pool are created with)."""
    from infra.stages import load_limits

    policy = load_limits()["password_policy"]
    kinds = [
        text
        for key, text in (
            ("RequireUppercase", "an uppercase letter"),
            ("RequireLowercase", "a lowercase letter"),
            ("RequireNumbers", "a number"),
            ("RequireSymbols", "a symbol"),
        )
        if policy.get(key)
    ]
    if not kinds:
        return f"at least {policy['MinimumLength']} characters"
    listed = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"
    return f"at least {policy['MinimumLength']} characters, with {listed}"


def token(username: str | None, password: str | None, member: bool = False, new_password: str | None = None) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from devstack import resources

    if not member and (username is not None or password is not None or new_password is not None):
        # Anyone's token takes both; only the seeded users' come without.
        _missing(
            "make token",
            [name for name, value in (("USER", username), ("PASSWORD", password)) if not value],
            TOKEN_EXAMPLE,
        )
    stack = _read_stack("make token")
    _emulator_credentials()
    if member:  # the seeded member, whose password only the stack file knows
        username, password = stack["member_username"], stack["member_password"]
    try:
        print(
            resources.id_token(
                stack["aws_endpoint_url"],
                stack["region"],
                stack["user_pool_client_id"],
                username or stack["admin_username"],
                password or stack["admin_password"],
                new_password,
            )
        )
    except resources.SignInRefused as exc:
        if exc.code == "InvalidPasswordException":  # the NEW_PASSWORD
            sys.exit(f"make token: {exc}; the pool's password policy: {password_policy()}")
        seeded = username in (None, stack["admin_username"], stack.get("member_username"))
        sys.exit(f"make token: {exc}" + (f" (the seeded users' passwords are in {_stack_file()})" if seeded else ""))
    except (BotoCoreError, ClientError) as exc:
        sys.exit(f"make token: the stack's Cognito answered {_aws_error(exc)}")


def add_user(email: str, password: str, admin: bool, name: str | None) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.domain.errors import AppError
    from devstack import resources

    _missing(
        "make user", [name for name, value in (("EMAIL", email), ("PASSWORD", password)) if not value], USER_EXAMPLE
    )
    stack = _read_stack("make user")
    _emulator_credentials()
    try:
        user_id = resources.add_user(
            stack["aws_endpoint_url"],
            stack["region"],
            stack["user_pool_id"],
            stack["table_name"],
            email,
            password,
            admin,
            name,
        )
    except AppError as exc:
        # The service undoes a half-made user (a sign-in whose password the pool refused).
        details = "; ".join(f"{d['field']} {d['message']}" for d in exc.details)
        if "password policy" in exc.message:  # say what the policy is
            details = password_policy()
        sys.exit(f"make user: {exc.message}{': ' + details if details else ''} (nothing was created)")
    except (BotoCoreError, ClientError) as exc:
        sys.exit(f"make user: the stack answered {_aws_error(exc)}")
    print(f"created {email} ({'admin' if admin else 'member'}, userId {user_id})")


def outbox(last: int) -> None:
    """The latest messages the stack would have mailed (invitations, password resets, email-change
    codes: chalicelib/adapters/local_outbox.py), newest last."""
    _print_latest(
        _written_by_stack("outbox_file", _outbox_file()),
        last,
        "no messages yet (invitations appear here when an admin creates a user; password resets and email codes too)",
    )


def events(last: int) -> None:
    """The latest change events the local stack published (one PutEvents entry per line), newest last."""
    _print_latest(
        _written_by_stack("events_file", _events_file()),
        last,
        "no events yet (each change to a user appears here within about a second)",
    )


def _print_latest(path: Path, last: int, when_empty: str) -> None:
    # stdout carries only the file's JSON lines, so `make -s outbox | jq` never chokes on a hint.
    if not path.exists():
        print(f"{path}: {when_empty}", file=sys.stderr)
        return
    for line in path.read_text().splitlines()[-last:]:
        print(line)


def _written_by_stack(key: str, default: Path) -> Path:
    """The file the running stack names in its stack file (a stack started with another
    OUTBOX_FILE or STACK_FILE writes elsewhere), else where a stack would write it."""
    info = lifecycle.read_stack_file(_stack_file())
    return Path(str(info[key])) if info and info.get(key) else default


def _events_file() -> Path:
    return _stack_file().parent / "events.jsonl"


def _outbox_file() -> Path:
    return Path(os.environ.get("OUTBOX_FILE", _stack_file().parent / "outbox.jsonl"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="start the embedded stack and the API")
    run_cmd.add_argument("--host", default="127.0.0.1")
    run_cmd.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    run_cmd.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "0")))
    token_cmd = commands.add_parser("token", help="print an ID token from the running stack")
    token_cmd.add_argument("--username")
    token_cmd.add_argument("--password")
    token_cmd.add_argument("--member", action="store_true", help="the seeded member instead of the admin")
    token_cmd.add_argument(
        "--new-password", help="an invited user's first sign-in: the password replacing the temporary one"
    )
    user_cmd = commands.add_parser("add-user", help="add a confirmed user to the running stack's pool")
    user_cmd.add_argument("--email", required=True)
    user_cmd.add_argument("--password", required=True)
    user_cmd.add_argument("--admin", action="store_true")
    user_cmd.add_argument("--name")
    outbox_cmd = commands.add_parser("outbox", help="print the latest messages the stack would have mailed")
    outbox_cmd.add_argument("--last", type=int, default=10)
    events_cmd = commands.add_parser("events", help="print the latest change events the stack published")
    events_cmd.add_argument("--last", type=int, default=10)
    import_cmd = commands.add_parser("import", help="import users from a CSV or JSON Lines file, with progress")
    import_cmd.add_argument("--file", default="")
    import_cmd.add_argument("--no-invite", action="store_true", help="send no invitations")
    export_cmd = commands.add_parser("export", help="export every user to a file")
    export_cmd.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export_cmd.add_argument("--out")
    worker_cmd = commands.add_parser("worker", help="run the bulk jobs worker of a stack started without one")
    worker_cmd.add_argument("--workers", type=int, default=2)
    sample_cmd = commands.add_parser("sample-users", help="print the sample users file (CSV) on stdout")
    sample_cmd.add_argument("--count", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.command == "run":
        # Both signals stop the stack, whatever this process inherited: a background job of a
        # non-interactive shell (`make run &` in a script) starts with SIGINT ignored, and then
        # neither Ctrl-C, `kill -INT` nor the e2e helper could stop it.
        lifecycle.stop_on_signals()
        lifecycle.exit_with_parent()
        run(args.host, args.port, args.moto_port)
        # All is stopped and the data goes with the process: skip the interpreter's teardown, which
        # frees every emulated item one by one (about a second of Ctrl-C at 10,000 users).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    elif args.command == "token":
        token(args.username, args.password, args.member, args.new_password)
    elif args.command == "outbox":
        outbox(args.last)
    elif args.command == "events":
        events(args.last)
    elif args.command in ("import", "export", "worker"):
        from devstack import bulk

        info = _read_stack(f"make {args.command}")
        _emulator_credentials()
        bulk.main(args.command, info, args)
    elif args.command == "sample-users":
        from devstack.sample_users import csv_text

        sys.stdout.write(csv_text(args.count))
    else:
        add_user(args.email, args.password, args.admin, args.name)


if __name__ == "__main__":
    main()
