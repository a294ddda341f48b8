"""Command-line interface: ``flask create-user``, ``flask seed-demo``, ``flask demo-logins``,
``flask import-environment``, ``flask export-environment``, ``flask cleanup-overrides``,
``flask erase-identity``, ``flask prune-identities`` and ``flask prune-analytics``."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app

from .clock import utcnow
from .models import ROLES
from .services import accounts, demo, documents, environments, humanize
from .services.errors import NotFound, ValidationError
from .services.experiments import retention as experiment_retention
from .services.identities import erase, identity_overrides
from .services.usage import retention

DEMO_LOGINS_FILE = "demo_logins.txt"


def init_app(app: Flask) -> None:
    """Register the commands."""
    app.cli.add_command(create_user_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(demo_logins_command)
    app.cli.add_command(import_environment_command)
    app.cli.add_command(export_environment_command)
    app.cli.add_command(cleanup_overrides_command)
    app.cli.add_command(erase_identity_command)
    app.cli.add_command(prune_identities_command)
    app.cli.add_command(run_streams_command)
    app.cli.add_command(prune_analytics_command)


@click.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option(
    "--project",
    "project_name",
    default=None,
    help="Grant the role on this project only (default: every project).",
)
def create_user_command(email: str, role: str, project_name: str | None) -> None:
    """Create a dashboard user (password from FLAGPOST_PASSWORD, else asked)."""
    password = os.environ.get("FLAGPOST_PASSWORD")
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = accounts.create_user(email, password, role, project_name)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    scope = f"project {project_name}" if project_name else "every project"
    click.echo(f"Created {user.email} with role {role} on {scope}.")


@click.command("seed-demo")
@click.option(
    "--print-logins/--no-print-logins",
    default=True,
    show_default=True,
    help="Print the demo accounts (make run prints them itself, after the URL).",
)
def seed_demo_command(print_logins: bool) -> None:
    """Create the demo organisation, project, identities and accounts in an empty database."""
    if not demo.database_is_empty():
        click.echo("The database already has data; nothing was changed.")
        return
    with click.progressbar(length=demo.total_steps(), label="Seeding demo data") as bar:
        result = demo.seed_demo(progress=bar.update)
    click.echo(result.message)
    text = _format_logins(result.logins)
    _logins_path().write_text(text)
    os.chmod(_logins_path(), 0o600)
    if print_logins:
        click.echo(text)


@click.command("demo-logins")
def demo_logins_command() -> None:
    """Print the demo accounts created by seed-demo (kept in the instance folder)."""
    path = _logins_path()
    if path.exists():
        click.echo(path.read_text())
    else:
        click.echo("No demo logins recorded (the database was not seeded by seed-demo).")


def _logins_path() -> Path:
    return Path(current_app.instance_path) / DEMO_LOGINS_FILE


def _format_logins(logins: list[demo.DemoLogin]) -> str:
    lines = ["Demo logins (passwords are random; this file is instance/demo_logins.txt):"]
    lines += [f"  {login.role:<7} {login.email:<40} {login.password}" for login in logins]
    return "\n".join(lines) + "\n"


@click.command("import-environment")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--organisation",
    "organisation_name",
    default="Imported",
    show_default=True,
    help="The organisation a new project is created in.",
)
@click.option(
    "--production/--not-production",
    default=None,
    help="Mark the environment as production (QA users may then link only their own "
    "identities), or not. Without either, a new environment is not production and an "
    "existing one keeps its setting (the document has no such field).",
)
def import_environment_command(file: Path, organisation_name: str, production: bool | None) -> None:
    """Import a Flagsmith environment document (the JSON of /environment-document/)."""
    doc = _read_json(file)
    try:
        total = documents.parse_document(doc).size
        with click.progressbar(length=total, label="Importing") as bar:
            result = documents.import_environment_document(
                doc, organisation_name=organisation_name, progress=bar.update
            )
    except ValidationError as exc:
        raise click.ClickException(f"{file}: {exc}") from exc
    environment = result.environment
    verb = "Created" if result.created else "Updated"
    counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in result.counts().items())
    click.echo(f"{verb} environment {environment.name!r} ({environment.client_key}): {counts}.")
    if production is not None:
        settings = replace(environments.settings_of(environment), production=production)
        environments.update_settings(environment, settings, None)
        click.echo(f"It is {'' if production else 'not '}a production environment.")


@click.command("export-environment")
@click.argument("key")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
def export_environment_command(key: str, output: Path | None) -> None:
    """Write an environment's Flagsmith document (by client-side key) as pretty JSON."""
    try:
        doc = documents.export_environment(key)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from exc
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {output}.", err=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{path}: not a JSON document ({exc})") from exc


@click.command("cleanup-overrides")
def cleanup_overrides_command() -> None:
    """Delete expired identity overrides (recorded as one audit event); run it periodically."""
    count = identity_overrides.cleanup_expired(utcnow())
    click.echo(f"Removed {count} expired identity override{'' if count == 1 else 's'}.")


@click.command("erase-identity")
@click.argument("key")
@click.argument("identifier")
def erase_identity_command(key: str, identifier: str) -> None:
    """Erase an identity (right to be forgotten) by environment key and identifier.

    Deletes it with its traits, overrides and links, and replaces its identifier and trait
    values in the audit log by an erased:… code (audited as a system action).
    """
    try:
        environment, identity_id = erase.find_by_key(key, identifier)
        token = erase.erase_identity(None, environment.project_id, environment.id, identity_id)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Erased the identity; the audit log now calls it {token}.")


@click.command("prune-identities")
@click.option(
    "--not-seen-days",
    "days",
    type=int,
    required=True,
    help="Erase identities whose SDK last identified them this many days ago or more.",
)
@click.option(
    "--environment",
    "key",
    default=None,
    help="Only this environment (its client-side or server-side key).",
)
@click.option("--dry-run", is_flag=True, help="Only count them (the default without --yes).")
@click.option("--yes", is_flag=True, help="Erase them (after a dry run showed the count).")
def prune_identities_command(days: int, key: str | None, dry_run: bool, yes: bool) -> None:
    """Erase identities not seen for N days (retention); counts only, unless --yes."""
    if dry_run and yes:
        raise click.UsageError("Choose --dry-run or --yes, not both.")
    environment_id = None
    try:
        if key is not None:
            environment_id = erase.find_environment(key).id
        result = erase.prune_identities(
            days, utcnow(), dry_run=not yes, environment_id=environment_id
        )
    except (NotFound, ValidationError) as exc:
        raise click.ClickException(str(exc)) from exc
    since = result.cutoff.strftime("%Y-%m-%d %H:%M UTC")
    found = humanize.plural(result.total, "identity")
    if result.dry_run:
        click.echo(f"Dry run: {found} not seen since {since} would be erased.")
        if result.total:
            click.echo("Run again with --yes to erase them.")
    else:
        click.echo(f"Erased {found} not seen since {since}.")


@click.command("run-streams")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: PORT + 1.")
def run_streams_command(host: str, port: int | None) -> None:
    """Serve real-time streams for SDKs and pages (uvicorn; Ctrl-C stops it)."""
    import uvicorn

    from .realtime import StreamSettings, create_stream_app

    settings = StreamSettings.from_config(current_app.config)
    port = port if port is not None else int(current_app.config["PORT"]) + 1
    click.echo(f"Streams on http://{host}:{port}/sse/")
    uvicorn.run(
        create_stream_app(settings),
        host=host,
        port=port,
        log_level="warning",
        # Open streams never end by themselves: stop them after a second on Ctrl-C.
        timeout_graceful_shutdown=1,
    )


@click.command("prune-analytics")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Keep this many days (default: the USAGE_RETENTION_DAYS setting, 90).",
)
def prune_analytics_command(days: int | None) -> None:
    """Delete usage counts, "seen" rows and the per-identity rows of experiments stopped
    longer ago than the retention; run it from cron."""
    keep = days or int(current_app.config.get("USAGE_RETENTION_DAYS", 90))
    now = utcnow()
    result = retention.prune_usage(now, keep)
    experiment_rows = experiment_retention.prune_experiments(now, timedelta(days=keep))
    experiment_words = humanize.plural(
        experiment_rows, "exposure or conversion row", "exposure or conversion rows"
    )
    click.echo(
        f"Removed {result.counts:,} hourly count row{'' if result.counts == 1 else 's'} and "
        f"{result.seen:,} seen row{'' if result.seen == 1 else 's'} older than {keep} days "
        f"(before {result.cutoff:%Y-%m-%d %H:%M} UTC), and "
        f"{experiment_words} of experiments stopped before then."
    )
