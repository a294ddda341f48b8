"""Experiments on a feature in an environment: list and start, results, stop."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from ..access import role_required
from ..clock import utcnow
from ..forms import ConfirmForm
from ..forms.experiments import ExperimentForm
from ..services import accounts
from ..services.errors import Conflict, ValidationError
from ..services.experiments import lifecycle, results
from ..services.features import catalog
from .features.common import invalid, render

bp = Blueprint("experiments", __name__, url_prefix="/environments/<id:environment_id>")


def _start_form(form: ExperimentForm | None = None) -> ExperimentForm:
    form = form or ExperimentForm(formdata=None)
    segments = lifecycle.enrolling_segments(g.project.id)
    form.segment_id.choices = [SelectChoice("", "every identity")] + [
        SelectChoice(segment.id, f"identities in the segment {segment.name}")
        for segment in segments
    ]
    return form


def _index_context(feature_id: int, form: ExperimentForm | None = None) -> dict[str, Any]:
    feature = catalog.get_feature(g.project.id, feature_id)
    return {
        "feature": feature,
        "environment": g.environment,
        "experiments": lifecycle.list_experiments(g.environment.id, feature.id),
        "running": lifecycle.running_experiment(g.environment.id, feature.id),
        "can_edit": accounts.has_role(current_user, g.project.id, "editor"),
        "form": _start_form(form),
    }


@bp.get("/features/<id:feature_id>/experiments")
@role_required("viewer")
def index(environment_id: int, feature_id: int) -> str:
    """List a feature's experiments here, with the form to start one."""
    return render_template("experiments/index.html", **_index_context(feature_id))


@bp.post("/features/<id:feature_id>/experiments")
@role_required("editor")
def start(environment_id: int, feature_id: int) -> Response:
    """Start an experiment; invalid input re-renders the form with inline errors (422)."""
    feature = catalog.get_feature(g.project.id, feature_id)
    form = _start_form(ExperimentForm())
    status = 422
    if form.validate_on_submit():
        try:
            experiment = lifecycle.start_experiment(
                g.environment, feature, form.name.data or "", form.goal_event.data or "",
                form.segment_id.data, current_user, utcnow(),
            )  # fmt: skip
        except Conflict as exc:
            form.form_errors.append(str(exc))
            status = 409
        except ValidationError as exc:
            invalid(form, exc)
        else:
            flash(f"Experiment “{experiment.name}” started.", "success")
            return redirect(
                url_for("experiments.detail", environment_id=environment_id,
                        experiment_id=experiment.id)
            )  # fmt: skip
    return render("experiments/index.html", status, **_index_context(feature_id, form))


@bp.get("/experiments/<id:experiment_id>")
@role_required("viewer")
def detail(environment_id: int, experiment_id: int) -> str:
    """Show an experiment's results per variant, the test and the verdict."""
    experiment = lifecycle.get_experiment(environment_id, experiment_id)
    return render_template(
        "experiments/detail.html",
        experiment=experiment,
        environment=g.environment,
        results=results.experiment_results(experiment),
        min_exposures=results.MIN_EXPOSURES,
        can_edit=accounts.has_role(current_user, g.project.id, "editor"),
        confirm_form=ConfirmForm(),
    )


@bp.post("/experiments/<id:experiment_id>/stop")
@role_required("editor")
def stop(environment_id: int, experiment_id: int) -> Response:
    """Stop a running experiment (its results stay)."""
    if ConfirmForm().validate_on_submit():
        try:
            lifecycle.stop_experiment(g.environment, experiment_id, current_user, utcnow())
            flash("Experiment stopped; its results stay here.", "success")
        except Conflict as exc:
            flash(str(exc), "error")
    else:
        lifecycle.get_experiment(environment_id, experiment_id)  # 404 before 422
        flash("The request expired; try again.", "error")
    return redirect(
        url_for("experiments.detail", environment_id=environment_id, experiment_id=experiment_id)
    )
