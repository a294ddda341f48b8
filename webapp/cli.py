"""Command-line interface: ``flask create-user``, ``flask seed-demo``, ``flask demo-logins``."""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask import Flask, current_app

from .models import ROLES
from .services import demo, users
from .services.errors import ValidationError

DEMO_LOGINS_FILE = "demo_logins.txt"


def init_app(app: Flask) -> None:
    """Register the commands."""
    app.cli.add_command(create_user_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(demo_logins_command)


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
        user = users.create_user(email, password, role, project_name)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    scope = f"project {project_name}" if project_name else "every project"
    click.echo(f"Created {user.email} with role {role} on {scope}.")


@click.command("seed-demo")
def seed_demo_command() -> None:
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
