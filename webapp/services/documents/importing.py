"""Import a Flagsmith environment document (SPEC §4), idempotently and in one transaction.

Rows are matched by their natural keys (feature by name, segment by hashing seed, state by
feature, override by segment or identity and feature, allocation by option) and updated in
place, so importing the same document twice changes nothing the second time; rows of this
environment the document no longer names are deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ...extensions import db
from ...models import (
    Environment,
    Feature,
    FeatureState,
    Identity,
    IdentityOverride,
    Organisation,
    Project,
    Segment,
    SegmentOverride,
)
from ...models.base import sha256_hex
from .. import audit
from ..errors import ValidationError
from .import_rows import (
    apply_identity_override,
    apply_state,
    assign,
    find_option,
    guess_type,
    set_traits,
)
from .validation import DocumentRecord, SegmentRecord, StateRecord, parse_document

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ImportResult:
    """What an import did; counts are of the document's items, ``removed`` of deleted rows."""

    environment: Environment
    created: bool
    features: int
    segments: int
    feature_states: int
    segment_overrides: int
    identity_overrides: int
    identities_created: int
    removed: int

    def counts(self) -> dict[str, int]:
        """Return the counts as a dict (for the audit log and the CLI)."""
        return {
            "features": self.features,
            "segments": self.segments,
            "feature_states": self.feature_states,
            "segment_overrides": self.segment_overrides,
            "identity_overrides": self.identity_overrides,
            "identities_created": self.identities_created,
            "removed": self.removed,
        }


def count_items(doc: Mapping[str, Any]) -> int:
    """Return how many progress steps importing ``doc`` reports (0 when it is invalid).

    :param doc: a decoded environment document.
    :return: the length to give a progress bar.
    """
    try:
        return parse_document(doc).size
    except ValidationError:
        return 0


def import_environment_document(
    doc: Mapping[str, Any],
    *,
    organisation_name: str = "Imported",
    progress: Progress | None = None,
) -> ImportResult:
    """Create or update an environment (and its project) from a Flagsmith document.

    The environment keeps the document's ``api_key`` as its client-side key. Its flag
    states, segment overrides and identity overrides are replaced by the document's;
    identities and traits the document does not name are kept.

    :param doc: the decoded JSON of a Flagsmith environment document.
    :param organisation_name: the organisation a new project is created in.
    :param progress: called with the number of items just processed.
    :return: the environment and what was imported.
    :raises ValidationError: naming the first wrong field; nothing is changed.
    """
    record = parse_document(doc)
    step = progress or (lambda _n: None)
    try:
        result = _Importer(record, step).run(organisation_name)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result


class _Importer:
    """One import: holds the rows matched so far so each helper stays small."""

    def __init__(self, record: DocumentRecord, step: Progress) -> None:
        self.record = record
        self.step = step
        self.features: dict[str, Feature] = {}
        self.removed = 0
        self.identities_created = 0
        # Whether features, options or segments (shared by the project) changed.
        self.project_changed = False

    def run(self, organisation_name: str) -> ImportResult:
        environment, created = self._environment(organisation_name)
        project = environment.project
        self._features(project)
        segments = self._segments(project)
        self._options()
        self._feature_states(environment)
        self._segment_overrides(environment, segments)
        self._identity_overrides(environment)
        environment.bump_revision()
        if self.project_changed:
            # Features and segments are project-wide: other environments' results may move.
            for other in project.environments:
                if other is not environment:
                    other.bump_revision()
        result = self._result(environment, created)
        db.session.flush()
        audit.record(
            None,
            "import",
            "environment",
            object_id=environment.id,
            object_label=environment.name,
            project_id=project.id,
            environment_id=environment.id,
            after=result.counts(),
            count=self.record.size,
        )
        return result

    def _result(self, environment: Environment, created: bool) -> ImportResult:
        record = self.record
        return ImportResult(
            environment=environment,
            created=created,
            features=len(self.features),
            segments=len(record.segments),
            feature_states=len(record.states),
            segment_overrides=sum(len(s.overrides) for s in record.segments),
            identity_overrides=sum(len(i.overrides) for i in record.identities),
            identities_created=self.identities_created,
            removed=self.removed,
        )

    # --- organisation, project, environment -------------------------------------------

    def _environment(self, organisation_name: str) -> tuple[Environment, bool]:
        record = self.record
        environment = db.session.scalar(
            select(Environment).where(Environment.client_key == record.api_key)
        )
        created = environment is None
        # An existing environment stays in its project (whatever the document's project
        # name); a new one goes to the project of that name in the organisation.
        project = (
            environment.project
            if environment is not None
            else _project(organisation_name, record.project_name)
        )
        _check_name_free(project, record)
        if environment is None:
            environment = Environment(project=project, client_key=record.api_key, name=record.name)
            db.session.add(environment)
        assign(
            environment,
            name=record.name,
            allow_client_traits=record.allow_client_traits,
            hide_disabled_flags=record.hide_disabled_flags,
        )
        db.session.flush()
        return environment, created

    # --- project-level rows ------------------------------------------------------------

    def _features(self, project: Project) -> None:
        existing = {
            f.name: f
            for f in db.session.scalars(
                select(Feature)
                .where(Feature.project_id == project.id)
                .options(selectinload(Feature.options))
            )
        }
        for state in self.record.states:
            feature = existing.get(state.feature_name)
            if feature is None:
                feature = Feature(project=project, name=state.feature_name)
                db.session.add(feature)
                self.project_changed = True
            # A feature made in Flagpost is already seen by SDKs under its own id.
            if feature.id is None or feature.sdk_id != state.feature_id:
                self.project_changed |= assign(feature, external_id=state.feature_id)
            self.project_changed |= assign(
                feature,
                type=state.feature_type or guess_type(state, feature),
                server_key_only=state.feature_id in self.record.server_key_only_ids,
            )
            self.features[state.feature_name] = feature

    def _segments(self, project: Project) -> list[Segment]:
        existing = list(
            db.session.scalars(
                select(Segment)
                .where(Segment.project_id == project.id)
                .order_by(Segment.position, Segment.id)
            )
        )
        # Match on hash_id, not hash_seed alone: a segment made in the dashboard is seen by
        # SDKs as its own id, and two segments with one SDK id would collapse into one.
        by_seed = {segment.hash_id: segment for segment in existing}
        imported = [
            self._segment(project, position, item, by_seed)
            for position, item in enumerate(self.record.segments)
        ]
        # Segments the document doesn't name stay (other environments may use them), after
        # the document's, so the document's order decides priority ties.
        others = [segment for segment in existing if segment not in imported]
        for position, segment in enumerate(others, start=len(imported)):
            self.project_changed |= assign(segment, position=position)
        return imported

    def _segment(
        self,
        project: Project,
        position: int,
        item: SegmentRecord,
        by_seed: dict[str, Segment],
    ) -> Segment:
        segment = by_seed.get(item.seed)
        if segment is None:
            segment = Segment(project=project, hash_seed=item.seed)
            db.session.add(segment)
            self.project_changed = True
        self.project_changed |= assign(segment, name=item.name, rules=item.rules, position=position)
        self.step(1)
        return segment

    def _options(self) -> None:
        for state in self._all_states():
            feature = self.features[state.feature_name]
            for variant in state.variants:
                self.project_changed |= find_option(feature, variant)[1]

    def _all_states(self) -> Iterable[StateRecord]:
        yield from self.record.states
        for segment in self.record.segments:
            yield from segment.overrides

    # --- environment rows --------------------------------------------------------------

    def _feature_states(self, environment: Environment) -> None:
        query = select(FeatureState).where(FeatureState.environment_id == environment.id)
        existing = {
            state.feature_id: state
            for state in db.session.scalars(query.options(selectinload(FeatureState.allocations)))
        }
        for item in self.record.states:
            feature = self.features[item.feature_name]
            state = existing.pop(feature.id, None)
            if state is None:
                state = FeatureState(feature=feature, environment=environment)
                db.session.add(state)
            apply_state(state, item, feature)
            self.step(1)
        self._delete(existing.values())

    def _segment_overrides(self, environment: Environment, segments: list[Segment]) -> None:
        query = select(SegmentOverride).where(SegmentOverride.environment_id == environment.id)
        existing = {
            (row.segment_id, row.feature_id): row
            for row in db.session.scalars(query.options(selectinload(SegmentOverride.allocations)))
        }
        for segment, item in zip(segments, self.record.segments, strict=True):
            for override_item in item.overrides:
                feature = self.features[override_item.feature_name]
                row = existing.pop((segment.id, feature.id), None)
                if row is None:
                    row = SegmentOverride(segment=segment, feature=feature, environment=environment)
                    db.session.add(row)
                apply_state(row, override_item, feature)
                assign(row, priority=override_item.priority)
                self.step(1)
        self._delete(existing.values())

    def _identity_overrides(self, environment: Environment) -> None:
        identities = self._identities(environment)
        query = select(IdentityOverride).where(IdentityOverride.environment_id == environment.id)
        existing = {(row.identity_id, row.feature_id): row for row in db.session.scalars(query)}
        for item in self.record.identities:
            identity = identities[item.identifier]
            for override_item in item.overrides:
                feature = self.features[override_item.feature_name]
                row = existing.pop((identity.id, feature.id), None)
                if row is None:
                    row = IdentityOverride(
                        identity_id=identity.id, feature=feature, environment_id=environment.id
                    )
                    db.session.add(row)
                apply_identity_override(row, override_item, feature)
            set_traits(identity, environment, item)
            self.step(1)
        self._delete(existing.values())

    def _identities(self, environment: Environment) -> dict[str, Identity]:
        hashes = [sha256_hex(item.identifier) for item in self.record.identities]
        found: dict[str, Identity] = {}
        for chunk in range(0, len(hashes), 500):
            query = select(Identity).where(
                Identity.environment_id == environment.id,
                Identity.identifier_hash.in_(hashes[chunk : chunk + 500]),
            )
            found.update(
                {
                    i.identifier: i
                    for i in db.session.scalars(query.options(selectinload(Identity.traits)))
                }
            )
        for item in self.record.identities:
            if item.identifier not in found:
                identity = Identity(environment_id=environment.id, identifier=item.identifier)
                db.session.add(identity)
                found[item.identifier] = identity
                self.identities_created += 1
        db.session.flush()
        return found

    def _delete(self, rows: Iterable[object]) -> None:
        for row in rows:
            db.session.delete(row)
            self.removed += 1
        db.session.flush()


def _check_name_free(project: Project, record: DocumentRecord) -> None:
    clash = db.session.scalar(
        select(Environment.id).where(
            Environment.project_id == project.id,
            Environment.name == record.name,
            Environment.client_key != record.api_key,
        )
    )
    if clash is not None:
        raise ValidationError(
            f"name: project {project.name!r} already has an environment named "
            f"{record.name!r} with another key",
            field="name",
        )


def _project(organisation_name: str, project_name: str) -> Project:
    organisation = db.session.scalar(
        select(Organisation).where(Organisation.name == organisation_name)
    )
    if organisation is None:
        organisation = Organisation(name=organisation_name)
        db.session.add(organisation)
    project = None
    if organisation.id is not None:
        project = db.session.scalar(
            select(Project).where(
                Project.organisation_id == organisation.id, Project.name == project_name
            )
        )
    if project is None:
        project = Project(organisation=organisation, name=project_name)
        db.session.add(project)
    db.session.flush()
    return project
