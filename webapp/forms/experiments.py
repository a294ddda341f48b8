"""Forms of the experiment pages: start (name, goal event, enrolling segment) and stop."""

from __future__ import annotations

from wtforms import StringField
from wtforms.validators import InputRequired, Length

from ..models.experiment import EVENT_NAME_MAX, EXPERIMENT_NAME_MAX
from .base import FlaskForm
from .ids import IdSelectField


class ExperimentForm(FlaskForm):  # type: ignore[misc]
    """Start an experiment; ``segment_id`` choices are the project's segments (blank: all)."""

    name = StringField(
        f"Name (at most {EXPERIMENT_NAME_MAX} characters)",
        validators=[InputRequired("Give the experiment a name"), Length(max=EXPERIMENT_NAME_MAX)],
    )
    goal_event = StringField(
        f"Goal event (the name SDKs pass to track_event, at most {EVENT_NAME_MAX} characters)",
        validators=[InputRequired("Name the goal event"), Length(max=EVENT_NAME_MAX)],
    )
    segment_id = IdSelectField("Enrol", default=None)
