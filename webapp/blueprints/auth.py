"""Log in and log out."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_limiter import RateLimitExceeded
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from ..access import safe_next
from ..forms import ConfirmForm, LoginForm
from ..limits import login_throttle, retry_after
from ..services import accounts

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "Invalid email or password."
LOGIN_THROTTLED = "Too many failed login attempts. Please wait a minute, then try again."


@bp.get("/login")
def login() -> str | Response:
    """Show the login form."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or url_for("dashboard.index"))
    return render_template("auth/login.html", form=LoginForm())


@bp.post("/login")
@login_throttle
def login_submit() -> tuple[str, int] | Response:
    """Check the credentials; the same message for unknown email and wrong password.

    Failures answer 422, which is what the login throttle counts (webapp/limits.py).
    """
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            login_user(user, remember=form.remember.data)
            return redirect(safe_next(request.args.get("next")) or url_for("dashboard.index"))
        form.form_errors.append(LOGIN_FAILED)
    return render_template("auth/login.html", form=form), 422


@bp.errorhandler(RateLimitExceeded)
def login_throttled(_exc: RateLimitExceeded) -> tuple[str, int, dict[str, str]]:
    """Refuse the attempt (whatever the password) on the login page itself."""
    form = LoginForm()
    form.form_errors.append(LOGIN_THROTTLED)
    page = render_template("auth/login.html", form=form)
    return page, 429, {"Retry-After": str(retry_after())}


@bp.post("/logout")
def logout() -> Response:
    """End the session."""
    if ConfirmForm().validate_on_submit():
        logout_user()
        flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))
