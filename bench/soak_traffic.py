"""Traffic generators for bench/soak.py: SDK clients and dashboard editors.

Every client records what the server acknowledged, so soak.py can check the database
afterwards: the last acknowledged value of each (identity, trait) an SDK thread owns, the
values written to identities all threads share, and each acknowledged dashboard change.
"""

from __future__ import annotations

import html
import json
import random
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import requests

TIMEOUT = 30
OWN_KEYS = ("soak_int", "soak_str", "soak_mixed")
SHARED_KEY = "soak_shared"
TRANSIENT_KEY = "soak_transient"
SHARED_IDENTIFIERS = tuple(f"soak-shared-{i}" for i in range(3))
CONFLICT_WORDS = ("changed since", "has changed")
Value = int | float | str | bool | None


class Stats:
    """Thread-safe latencies and statuses per request kind, and samples of failures."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.failures: list[str] = []

    def call(self, session: requests.Session, kind: str, method: str, url: str,
             ok: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response | None:
        """Send one request; status 0 records a connection error (then None is returned)."""
        started = time.perf_counter()
        try:
            response = session.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            self.record(kind, 0, started, f"{kind} {method} {url}: {exc!r}")
            return None
        problem = None
        if response.status_code not in ok:
            problem = f"{kind} {method} {url}: {response.status_code} {response.text[:300]!r}"
        self.record(kind, response.status_code, started, problem)
        return response

    def record(self, kind: str, status: int, started: float, problem: str | None) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.latency[kind].append(elapsed)
            self.statuses[kind][status] += 1
            if problem and len(self.failures) < 20:
                self.failures.append(problem)

    def count(self, predicate: Any) -> int:
        with self.lock:
            return sum(n for by in self.statuses.values() for s, n in by.items() if predicate(s))


@dataclass
class SdkLedger:
    """What one SDK thread had acknowledged (it owns its identifiers)."""

    last: dict[tuple[str, str], Value] = field(default_factory=dict)  # None: deleted
    shared: dict[tuple[str, str], set[Any]] = field(default_factory=lambda: defaultdict(set))
    transient_identifiers: list[str] = field(default_factory=list)


def mixed_value(counter: int) -> Value:
    """Cycle through the four trait types, so a key's type changes between writes."""
    return (counter, f"m{counter}", counter + 0.25, counter % 2 == 0)[counter % 4]


class SdkClient:
    """An SDK making identify calls with trait changes, flag reads and transient calls."""

    def __init__(self, index: int, base: str, key: str, identifiers: list[str],
                 stats: Stats, seed: int) -> None:
        self.index, self.base, self.identifiers, self.stats = index, base, identifiers, stats
        self.rng = random.Random(seed)
        self.session = requests.Session()
        self.session.headers.update({"X-Environment-Key": key})
        self.ledger = SdkLedger()
        self.counters: dict[tuple[str, str], int] = defaultdict(int)

    def run(self, stop: threading.Event, start: threading.Barrier) -> None:
        start.wait()
        for identifier in SHARED_IDENTIFIERS:  # every thread at once: identity creation races
            self.identify_shared(identifier)
        while not stop.is_set():
            roll = self.rng.random()
            if roll < 0.65:
                self.identify_own()
            elif roll < 0.80:
                self.identify_shared(self.rng.choice(SHARED_IDENTIFIERS))
            elif roll < 0.90:
                self.stats.call(self.session, "sdk flags", "GET", f"{self.base}/api/v1/flags/")
            else:
                self.identify_transient()

    def identify(self, kind: str, body: dict[str, Any]) -> bool:
        response = self.stats.call(self.session, kind, "POST", f"{self.base}/api/v1/identities/",
                                   json=body)
        return response is not None and response.status_code == 200

    def identify_own(self) -> None:
        identifier = self.rng.choice(self.identifiers)
        writes: dict[str, Value] = {}
        for key in self.rng.sample(OWN_KEYS, self.rng.randint(1, len(OWN_KEYS))):
            self.counters[identifier, key] += 1
            counter = self.counters[identifier, key]
            if self.rng.random() < 0.05:
                writes[key] = None
            else:
                writes[key] = {"soak_int": counter, "soak_str": f"v{counter}"}.get(
                    key, mixed_value(counter))
        traits = [{"trait_key": k, "trait_value": v} for k, v in writes.items()]
        traits.append({"trait_key": TRANSIENT_KEY, "trait_value": 1, "transient": True})
        if self.identify("sdk identify", {"identifier": identifier, "traits": traits}):
            for key, value in writes.items():
                self.ledger.last[identifier, key] = value

    def identify_shared(self, identifier: str) -> None:
        self.counters[identifier, SHARED_KEY] += 1
        value = f"t{self.index}-{self.counters[identifier, SHARED_KEY]}"
        body = {"identifier": identifier, "traits": [{"trait_key": SHARED_KEY,
                                                      "trait_value": value}]}
        if self.identify("sdk identify shared", body):
            self.ledger.shared[identifier, SHARED_KEY].add(value)

    def identify_transient(self) -> None:
        identifier = f"soak-transient-{self.index}-{self.rng.randrange(10**9)}"
        body = {"identifier": identifier, "transient": True,
                "traits": [{"trait_key": "plan", "trait_value": "pro"}]}
        if self.identify("sdk identify transient", body):
            self.ledger.transient_identifiers.append(identifier)


class FormFields(HTMLParser):
    """Collect the named fields of one form (by id) the way a browser would submit them."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.fields = form_id, False, []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or "disabled" in a:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type", "text") not in ("submit", "button"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.fields.append((name, a.get("value") or ""))
        elif tag == "select" and name:
            self._select, self._options = name, []
        elif tag == "option" and self._select:
            self._options.append((a.get("value") or "", "selected" in a))
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields.append((name, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select:
            chosen = [v for v, selected in self._options if selected] or [
                v for v, _ in self._options[:1]]
            self.fields.extend((self._select, v) for v in chosen)
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self.fields and self.fields[-1][0] == self._textarea:
            self.fields[-1] = (self._textarea, self.fields[-1][1] + data.lstrip("\n"))


@dataclass
class DashboardLedger:
    """Acknowledged dashboard changes, and what each lockstep round did."""

    overrides: dict[tuple[str, int, int], int] = field(default_factory=lambda: defaultdict(int))
    segment_saves: list[tuple[int, str]] = field(default_factory=list)  # (base version, desc)
    # (kind, round) -> (base version, outcome, when the round started)
    rounds: dict[tuple[str, int], tuple[str | None, str, float]] = field(default_factory=dict)
    rejected: int = 0
    unexpected: int = 0


def csrf_of(page: str) -> str:
    found = re.search(r'"X-CSRFToken": "([^"]+)"', page) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', page)
    if found is None:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


def row_of(page: str, feature: str) -> str:
    match = re.search(rf'<tr id="flag-{re.escape(feature)}".*?</tr>', page, re.S)
    return match.group(0) if match else ""


def extra_values(fragment: str) -> dict[str, str]:
    """Hidden inputs and hx-vals of a fragment (e.g. an optimistic ``version``)."""
    values = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"',
                             fragment))
    for raw in re.findall(r"hx-vals='([^']*)'", fragment):
        loaded = json.loads(html.unescape(raw))
        values.update({k: str(v) for k, v in loaded.items() if k != "action" and v is not None})
    return values


class DashboardClient:
    """An editor toggling and removing identity overrides and saving one segment's rules.

    Every fourth change is a lockstep round: both editors open the same thing, wait for each
    other (``pair``), then submit at once, so the optimistic version checks are exercised.
    """

    def __init__(self, base: str, environment_id: int, login: tuple[str, str],
                 targets: dict[str, Any], stats: Stats, pair: threading.Barrier) -> None:
        self.base, self.env, (self.email, self.password) = base, environment_id, login
        self.targets, self.stats, self.pair = targets, stats, pair
        self.rng = random.Random(self.email)
        self.session = requests.Session()
        self.ledger = DashboardLedger()
        self.round = 0
        self.stop = threading.Event()

    def login(self) -> None:
        page = self.stats.call(self.session, "dash login", "GET", f"{self.base}/login")
        assert page is not None
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        assert token is not None, "no CSRF token on the login page"
        response = self.stats.call(
            self.session, "dash login", "POST", f"{self.base}/login", ok=(302,),
            allow_redirects=False,
            data={"email": self.email, "password": self.password, "csrf_token": token.group(1)})
        if response is None or response.status_code != 302:
            raise RuntimeError(f"login failed for {self.email}")

    def run(self, stop: threading.Event, start: threading.Barrier) -> None:
        self.stop = stop
        self.login()
        start.wait()
        try:
            while not stop.is_set():
                self.round += 1
                if self.round % 4 == 0:
                    self.save_segment(lockstep=True)
                elif self.round % 4 == 2:
                    pick = random.Random(self.round)  # both editors pick the same override
                    self.change_override("toggle", pick, lockstep=True)
                else:
                    self.random_change()
        finally:
            self.pair.abort()  # release the other editor if it waits for this one

    def random_change(self) -> None:
        roll = self.rng.random()
        if roll < 0.6:
            self.change_override("toggle", self.rng)
        elif roll < 0.8:
            self.change_override("remove", self.rng)
        else:
            self.save_segment()

    def meet(self) -> float:
        """Wait for the other editor; return when the round started (to pair the records)."""
        try:
            self.pair.wait(timeout=20)
        except threading.BrokenBarrierError:
            if not self.stop.is_set():
                self.pair.reset()  # a timeout broke it: the next round meets again
        return time.monotonic()

    def outcome(self, response: requests.Response | None) -> str:
        """Classify: "ok" (2xx/3xx), "rejected" (a clean conflict), else "error"."""
        if response is None or response.status_code >= 500:
            return "error"
        if response.status_code < 400:
            return "ok"
        text = (response.text + response.headers.get("HX-Trigger", "")).lower()
        if response.status_code in (409, 422) and any(w in text for w in CONFLICT_WORDS):
            self.ledger.rejected += 1
            return "rejected"
        self.ledger.unexpected += 1
        with self.stats.lock:
            self.stats.failures.append(f"{response.request.method} {response.url}: "
                                       f"{response.status_code} {response.text[:300]!r}")
        return "error"

    def change_override(self, action: str, rng: random.Random, lockstep: bool = False) -> None:
        identity_id = rng.choice(self.targets["identities"])
        feature_id, feature = rng.choice(self.targets["features"])
        url = f"{self.base}/environments/{self.env}/identities/{identity_id}"
        page = self.stats.call(self.session, "dash identity page", "GET", url)
        met = self.meet() if lockstep else 0.0
        if page is None or page.status_code != 200:
            return
        row = row_of(page.text, feature)
        pattern = r'hx-post="([^"]+/toggle)"' if action == "toggle" else r'hx-delete="([^"]+)"'
        target = re.search(pattern, row)
        if target is None:
            return  # nothing to remove (no override on this row)
        headers = {"X-CSRFToken": csrf_of(page.text), "HX-Request": "true"}
        extra = extra_values(row)
        data = {"expires": "never", "expires_at": "", **extra}
        method = "POST" if action == "toggle" else "DELETE"
        response = self.stats.call(self.session, f"dash override {action}", method,
                                   self.base + html.unescape(target.group(1)),
                                   ok=(200, 409), headers=headers, data=data)
        result = self.outcome(response)
        if result == "ok":
            self.ledger.overrides[action, identity_id, feature_id] += 1
        if lockstep:
            self.ledger.rounds["override", self.round] = (extra.get("version"), result, met)

    def save_segment(self, lockstep: bool = False) -> None:
        segment_id = self.targets["segment_id"]
        url = f"{self.base}/environments/{self.env}/segments/{segment_id}/edit"
        page = self.stats.call(self.session, "dash segment editor", "GET", url)
        met = self.meet() if lockstep else 0.0
        if page is None or page.status_code != 200:
            return
        parser = FormFields("segment-form")
        parser.feed(page.text)
        fields = dict(parser.fields)
        description = f"soak {self.email} round {self.round}"
        fields.update(description=description, action="")
        value_field = "groups-0-conditions-0-value"
        if value_field in fields:
            fields[value_field] = str(10 + self.rng.randrange(10))
        headers = {"X-CSRFToken": csrf_of(page.text), "HX-Request": "true"}
        response = self.stats.call(self.session, "dash segment save", "PUT", url,
                                   ok=(200, 409), headers=headers, data=fields)
        result = self.outcome(response)
        if result == "ok":
            self.ledger.segment_saves.append((int(fields.get("version") or -1), description))
        if lockstep:
            self.ledger.rounds["segment", self.round] = (fields.get("version"), result, met)
