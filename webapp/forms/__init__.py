"""Flask-WTF forms, one module per area; every POST/PUT/DELETE in the dashboard uses one.

A package rather than STYLE's single forms.py: four areas (auth, identities, segments,
features) each bring several forms, and one module would pass 400 lines.
"""

from .auth import ConfirmForm, EnvironmentSettingsForm, LoginForm, ServerKeyForm
from .projects import CloneForm, CompareForm, DeleteForm, NameForm, ProjectForm

__all__ = [
    "CloneForm",
    "CompareForm",
    "ConfirmForm",
    "DeleteForm",
    "EnvironmentSettingsForm",
    "LoginForm",
    "NameForm",
    "ProjectForm",
    "ServerKeyForm",
]
