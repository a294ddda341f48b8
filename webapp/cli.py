"""Command-line interface: ``flask create-user``, ``flask seed-demo``, ``flask demo-logins``,
``flask import-environment``, ``flask export-environment``, ``flask cleanup-overrides`` and
``flask prune-analytics``."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app

from .clock import utcnow
from .models import ROLES
from .services import accounts, demo, documents, environments
from .services.errors import NotFound, ValidationError
from .services.identities import identity_overrides
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


@click.command("prune-analytics")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Keep this many days (default: the USAGE_RETENTION_DAYS setting, 90).",
)
def prune_analytics_command(days: int | None) -> None:
    """Delete usage counts and "seen" rows older than the retention; run it from cron."""
    keep = days or int(current_app.config.get("USAGE_RETENTION_DAYS", 90))
    result = retention.prune_usage(utcnow(), keep)
    click.echo(
        f"Removed {result.counts:,} hourly count row{'' if result.counts == 1 else 's'} and "
        f"{result.seen:,} seen row{'' if result.seen == 1 else 's'} older than {keep} days "
        f"(before {result.cutoff:%Y-%m-%d %H:%M} UTC)."
    )
