"""Flagpost: feature flags built around identities."""

import os
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask

from . import config
from .api_paths import keep_hooks_off_apis
from .extensions import csrf, db, login_manager, migrate
from .ids import IdConverter


def create_app(config_overrides: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure a Flagpost application."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(config.DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_mapping(config.from_environment(os.environ))
    if config_overrides:
        app.config.from_mapping(config_overrides)
    _finish_config(app)

    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=os.path.join(os.path.dirname(app.root_path), "migrations"),
        render_as_batch=True,
        compare_type=True,
    )
    csrf.init_app(app)
    login_manager.init_app(app)

    from . import access, cli, errors, humanize, limits, live, models, navigation, security  # noqa: F401
    from .blueprints import (
        audit,
        auth,
        dashboard,
        experiments,
        features,
        identities,
        ofrep,
        people,
        projects,
        refuse_nul_in_url,
        sdk_api,
        segments,
        users,
    )
    from .services import change_events
    from .sessions import DashboardSessionInterface

    app.session_interface = DashboardSessionInterface()
    app.url_map.converters["id"] = IdConverter  # before the rules that use <id:…>
    app.before_request(refuse_nul_in_url)
    # In name order, as they were first registered: for a path two rules share, the order
    # decides which endpoint an automatic OPTIONS request matches.
    app.register_blueprint(audit.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(experiments.bp)
    app.register_blueprint(features.bp)
    app.register_blueprint(identities.bp)
    app.register_blueprint(ofrep.bp)
    app.register_blueprint(projects.bp)
    app.register_blueprint(people.bp)
    app.register_blueprint(sdk_api.bp)
    app.register_blueprint(segments.bp)
    app.register_blueprint(users.bp)
    limits.init_app(app)
    access.init_app(app)
    errors.init_app(app)
    navigation.init_app(app)
    humanize.init_app(app)
    security.init_app(app)
    cli.init_app(app)
    change_events.init_app(app)
    live.init_app(app)
    # CSRF exemption, declared once: the key-authenticated APIs are the paths under
    # api_paths.API_PREFIXES, and CSRF protection (like the remember cookie) is kept off them
    # by path. STYLE §5 says csrf.exempt(sdk_api.bp); skipping the hook by path is the same
    # exemption without CSRFProtect running at all on the identify hot path.
    keep_hooks_off_apis(app, _is_dashboard_extension_hook)
    return app


def _is_dashboard_extension_hook(hook: Callable[..., Any]) -> bool:
    """Pick CSRF protection and Flask-Login's remember-cookie refresh (page concerns)."""
    return (
        getattr(hook, "__self__", None) is login_manager
        or getattr(hook, "__module__", None) == "flask_wtf.csrf"
    )


def _finish_config(app: Flask) -> None:
    """Fill in the settings whose defaults depend on the instance folder."""
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        url = app.config.get("DATABASE_URL") or config.sqlite_url(app.instance_path)
        app.config["SQLALCHEMY_DATABASE_URI"] = url
    uri = config.normalise_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_DATABASE_URI"] = uri
    if uri.startswith("sqlite:///") and ":memory:" not in uri:
        os.makedirs(app.instance_path, exist_ok=True)
    if uri.startswith("sqlite"):
        # A file has no server connection to go stale; pinging it only costs a query.
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        options["pool_pre_ping"] = False
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config["SESSION_COOKIE_SECURE"])
    if not app.config.get("STREAM_URL"):
        # `make run` serves streams on PORT + 1; behind a proxy set FLAGPOST_STREAM_URL.
        app.config["STREAM_URL"] = f"http://127.0.0.1:{int(app.config['PORT']) + 1}/"
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config.load_or_create_secret_key(app.instance_path)
