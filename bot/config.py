"""Tighten's configuration: one YAML file, validated at start-up before anything runs.

Every error names the file, the key (as a dotted path such as ``accounts[1].approvers.users``) and what was
expected, so a typo is fixed in one go. Secrets never live here: Slack tokens and AWS credentials come from the
environment (see README "Configuration").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot import config_checks as checks
from bot.errors import ConfigError

ACCOUNT_ID = re.compile(r"^\d{12}$")
SQL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")
SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{6,}$")
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{6,}$")
SLACK_GROUP = re.compile(r"^S[A-Z0-9]{6,}$")
HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class Approvers:
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.users or self.groups)


IAC_TOOLS = ("terraform", "cloudformation")


@dataclass(frozen=True)
class IacRule:
    """A role matching every matcher given (``tag``: ``key`` or ``key=value``; ``name``, ``path``: shell globs,
    case-insensitive) is managed as code by ``tool``. ``where`` is the rule's key in the file, shown as the
    reason (``iac.rules[0]``)."""

    tool: str
    tag: str | None = None
    name: str | None = None
    path: str | None = None
    where: str = ""

    def describe(self) -> str:
        parts = [f"tag {self.tag}" if self.tag else "", f"name {self.name}" if self.name else "",
                 f"path {self.path}" if self.path else ""]
        return " and ".join(p for p in parts if p)


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    reader_role: str = "TightenReader"
    applier_role: str = "TightenApplier"
    channel: str | None = None
    approvers: Approvers = Approvers()
    regions: tuple[str, ...] = ()
    iac_direct_apply: bool | None = None  # None: iac.direct_apply
    iac_rules: tuple[IacRule, ...] = ()  # checked before the top-level iac.rules


@dataclass(frozen=True)
class Digest:
    channel: str
    kind: str  # "daily" | "weekly"
    cron: str


@dataclass(frozen=True)
class OffHours:
    start: str  # "HH:MM"
    end: str
    timezone: str = "UTC"


@dataclass(frozen=True)
class Schedules:
    ingest: str = "*/15 * * * *"
    plan: str = "0 * * * *"
    expire: str = "30 3 * * *"
    watch: str = "*/10 * * * *"
    off_hours: OffHours | None = None


@dataclass(frozen=True)
class AccessAnalyzerSettings:
    trail_arn: str | None = None
    access_role_arn: str | None = None
    max_concurrent: int = 1
    max_per_day: int = 50


@dataclass(frozen=True)
class AthenaConfig:
    """Where ``tighten ingest --athena`` reads usage from (the table printed by ``tighten athena-ddl``)."""

    database: str | None = None
    table: str = "cloudtrail_org"
    workgroup: str = "primary"
    output_location: str | None = None
    catalog: str = "AwsDataCatalog"
    region: str | None = None
    price_per_tb: float = 5.0
    grouping: str = "projected"  # "projected" | "full"
    days_per_query: int = 1
    query_timeout_minutes: int = 30


@dataclass(frozen=True)
class Config:
    path: str = "<defaults>"
    db_path: str = "tighten.db"
    cloudtrail_source: str | None = None
    lookback_days: int = 90
    # IAM's service-last-accessed data: keep what IAM says was used within this many days but the CloudTrail
    # window does not show (rare jobs); 0 turns the safety net off. IAM keeps 400 days.
    last_accessed_horizon_days: int = 400
    accounts: tuple[Account, ...] = ()
    organizations_enabled: bool = False
    organizations_role: str = "TightenOrgReader"
    protected_roles: tuple[str, ...] = ()
    protected_tags: tuple[str, ...] = ("tighten:protected",)
    own_role_arns: tuple[str, ...] = ()
    allow_self_approval: bool = False
    default_approvers: Approvers = Approvers()
    review_channel: str | None = None
    slack_mode: str = "socket"  # "socket" | "http"
    http_host: str = "127.0.0.1"  # HTTP mode: address to listen on (behind a TLS proxy)
    http_port: int = 3000
    digests: tuple[Digest, ...] = ()
    schedules: Schedules = field(default_factory=Schedules)
    backend: str = "local"  # "local" | "access-analyzer"
    access_analyzer: AccessAnalyzerSettings = field(default_factory=AccessAnalyzerSettings)
    managed_policy_prefix: str = "tighten-"
    retention_days: int = 30
    proposal_ttl_days: int = 14
    watch_days: int = 7
    allowlist_path: str | None = None
    iac_direct_apply: bool = False
    iac_rules: tuple[IacRule, ...] = ()
    athena: AthenaConfig = field(default_factory=AthenaConfig)

    def account(self, account_id: str) -> Account | None:
        return next((a for a in self.accounts if a.id == account_id), None)

    def approvers_for(self, account_id: str) -> Approvers:
        acct = self.account(account_id)
        return acct.approvers if acct and acct.approvers else self.default_approvers

    def channel_for(self, account_id: str) -> str | None:
        acct = self.account(account_id)
        return (acct.channel if acct else None) or self.review_channel

    def iac_rules_for(self, account_id: str) -> tuple[IacRule, ...]:
        """The account's own rules first, then the top-level ones."""
        acct = self.account(account_id)
        return (acct.iac_rules if acct else ()) + self.iac_rules

    def direct_apply_allowed(self, account_id: str) -> bool:
        """May Tighten change a role managed as code in this account directly (``iac.direct_apply``)?"""
        acct = self.account(account_id)
        if acct is not None and acct.iac_direct_apply is not None:
            return acct.iac_direct_apply
        return self.iac_direct_apply


class _Reader:
    """Walks the raw YAML, collecting every problem instead of stopping at the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.file}: {key}: {message}")

    def section(self, raw: dict[str, Any], key: str, path: str) -> dict[str, Any]:
        value = raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(_join(path, key), f"expected a mapping, got {_kind(value)}")
            return {}
        return value

    def unknown_keys(self, raw: dict[str, Any], allowed: set[str], path: str) -> None:
        for key in sorted(set(raw) - allowed):
            self.problem(_join(path, str(key)), f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def get(self, raw: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...], default: Any,
            *, required: bool = False) -> Any:
        full = _join(path, key)
        if key not in raw or raw[key] is None:
            if required:
                self.problem(full, f"missing required key (expected {_expected(kind)})")
            return default
        value = raw[key]
        if isinstance(value, bool) and kind in (int, (int,)):
            self.problem(full, f"expected {_expected(kind)}, got {_kind(value)}")
            return default
        if not isinstance(value, kind):
            self.problem(full, f"expected {_expected(kind)}, got {_kind(value)}")
            return default
        return value

    def positive_int(self, raw: dict[str, Any], key: str, path: str, default: int) -> int:
        value = self.get(raw, key, path, int, default)
        if value < 1:
            self.problem(_join(path, key), f"expected a positive integer, got {value}")
            return default
        return int(value)

    def pattern(self, raw: dict[str, Any], key: str, path: str, rx: re.Pattern[str], what: str,
                default: str | None = None, *, required: bool = False) -> str | None:
        value = self.get(raw, key, path, str, default, required=required)
        if value is not default and not rx.match(str(value)):
            self.problem(_join(path, key), f"expected {what}, got {value!r}")
            return default
        return value

    def str_list(self, raw: dict[str, Any], key: str, path: str, rx: re.Pattern[str] | None = None,
                 what: str = "a string") -> tuple[str, ...]:
        value = self.get(raw, key, path, list, [])
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or (rx is not None and not rx.match(item)):
                self.problem(f"{_join(path, key)}[{i}]", f"expected {what}, got {item!r}")
                continue
            out.append(item)
        return tuple(out)

    def int_range(self, raw: dict[str, Any], key: str, path: str, default: int, low: int, high: int,
                  why: str = "") -> int:
        value = self.get(raw, key, path, int, default)
        if not low <= value <= high:
            self.problem(_join(path, key), f"expected an integer from {low} to {high}, got {value}"
                         + (f" ({why})" if why and value > high else ""))
            return default
        return int(value)

    def checked_list(self, raw: dict[str, Any], key: str, path: str,
                     check: Callable[[str], str | None]) -> tuple[str, ...]:
        """A list of strings, each passed through ``check`` (which returns the problem or None)."""
        value = self.get(raw, key, path, list, [])
        out = []
        for i, item in enumerate(value):
            problem = check(item) if isinstance(item, str) else f"expected a string, got {_kind(item)}"
            if problem:
                self.problem(f"{_join(path, key)}[{i}]", problem)
                continue
            out.append(item)
        return tuple(out)

    def cron(self, raw: dict[str, Any], key: str, path: str, default: str) -> str:
        value = self.get(raw, key, path, str, default)
        if value is not default:
            error = cron_error(value)
            if error:
                self.problem(_join(path, key), f"expected a 5-field cron expression, got {value!r} ({error})")
                return default
        return value

    def choice(self, raw: dict[str, Any], key: str, path: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(raw, key, path, str, default)
        if value not in choices:
            self.problem(_join(path, key), f"expected one of {', '.join(choices)}, got {value!r}")
            return default
        return value


def cron_error(expr: str) -> str | None:
    """None when ``expr`` is a valid 5-field crontab expression, else APScheduler's reason."""
    from apscheduler.triggers.cron import CronTrigger

    if len(expr.split()) != 5:
        return f"{len(expr.split())} fields"
    try:
        CronTrigger.from_crontab(expr, timezone="UTC")
    except ValueError as exc:
        return str(exc)
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


def _expected(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_kind(k()) if k is not type(None) else "null" for k in kinds)


def _iac(r: _Reader, raw: dict[str, Any], path: str) -> tuple[bool | None, tuple[IacRule, ...]]:
    """The ``iac`` section at ``path``: (direct_apply or None when not set, rules)."""
    section = r.section(raw, "iac", path)
    p = _join(path, "iac")
    r.unknown_keys(section, {"direct_apply", "rules"}, p)
    direct = r.get(section, "direct_apply", p, bool, None)
    rules: list[IacRule] = []
    for i, item in enumerate(r.get(section, "rules", p, list, [])):
        where = f"{p}.rules[{i}]"
        if not isinstance(item, dict):
            r.problem(where, f"expected a mapping, got {_kind(item)}")
            continue
        r.unknown_keys(item, {"tool", "tag", "name", "path"}, where)
        tool = r.get(item, "tool", where, str, "", required=True)
        if tool and tool not in IAC_TOOLS:
            r.problem(_join(where, "tool"), f"expected one of {', '.join(IAC_TOOLS)}, got {tool!r}")
            tool = ""
        tag = r.get(item, "tag", where, str, None)
        if tag is not None and (not tag.partition("=")[0] or tag.startswith("=")):
            r.problem(_join(where, "tag"), f"expected a tag key or key=value, got {tag!r}")
            tag = None
        name = r.get(item, "name", where, str, None)
        role_path = r.get(item, "path", where, str, None)
        if role_path is not None and not role_path.startswith("/"):
            r.problem(_join(where, "path"), f"expected a role path pattern starting with '/', got {role_path!r}")
            role_path = None
        if not (tag or name or role_path):
            if not any(k in item for k in ("tag", "name", "path")):
                r.problem(where, "a rule needs at least one of tag, name, path")
            continue
        if tool:
            rules.append(IacRule(tool=tool, tag=tag, name=name, path=role_path, where=where))
    return direct, tuple(rules)


def _approvers(r: _Reader, raw: dict[str, Any], path: str) -> Approvers:
    section = r.section(raw, "approvers", path)
    p = _join(path, "approvers")
    r.unknown_keys(section, {"users", "groups"}, p)
    return Approvers(
        users=r.str_list(section, "users", p, SLACK_USER, "a Slack user ID like U012ABCDEF"),
        groups=r.str_list(section, "groups", p, SLACK_GROUP, "a Slack user group ID like S012ABCDEF"),
    )


def parse_config(raw: Any, file: str = "<config>") -> Config:
    """Validate a parsed YAML document; raises :class:`ConfigError` listing every problem."""
    r = _Reader(file)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{file}: (top level): expected a mapping, got {_kind(raw)}"])
    top = {"store", "cloudtrail", "accounts", "organizations", "scope", "approval", "slack", "schedules",
           "backend", "apply", "allowlist", "iac", "athena"}
    r.unknown_keys(raw, top, "")

    store = r.section(raw, "store", "")
    r.unknown_keys(store, {"path"}, "store")
    trail = r.section(raw, "cloudtrail", "")
    r.unknown_keys(trail, {"source", "lookback_days", "last_accessed_horizon_days"}, "cloudtrail")

    accounts: list[Account] = []
    raw_accounts = r.get(raw, "accounts", "", list, [])
    seen: set[str] = set()
    for i, item in enumerate(raw_accounts):
        p = f"accounts[{i}]"
        if not isinstance(item, dict):
            r.problem(p, f"expected a mapping, got {_kind(item)}")
            continue
        r.unknown_keys(item, {"id", "name", "reader_role", "applier_role", "channel", "approvers", "regions", "iac"},
                       p)
        acct_id = item.get("id")
        if isinstance(acct_id, int) and not isinstance(acct_id, bool):
            r.problem(_join(p, "id"), "expected a 12-digit account ID as a quoted string (YAML drops leading zeros)")
            acct_id = None
        else:
            acct_id = r.pattern(item, "id", p, ACCOUNT_ID, "a 12-digit account ID string", required=True)
        if acct_id and acct_id in seen:
            r.problem(_join(p, "id"), f"duplicate account {acct_id}")
        if acct_id:
            seen.add(acct_id)
        accounts.append(Account(
            id=acct_id or "",
            name=r.get(item, "name", p, str, acct_id or ""),
            reader_role=r.get(item, "reader_role", p, str, "TightenReader"),
            applier_role=r.get(item, "applier_role", p, str, "TightenApplier"),
            channel=r.pattern(item, "channel", p, SLACK_CHANNEL, "a Slack channel ID like C012ABCDEF"),
            approvers=_approvers(r, item, p),
            regions=r.checked_list(item, "regions", p, checks.region_problem),
            **dict(zip(("iac_direct_apply", "iac_rules"), _iac(r, item, p), strict=True)),
        ))

    org = r.section(raw, "organizations", "")
    r.unknown_keys(org, {"enabled", "role"}, "organizations")
    scope = r.section(raw, "scope", "")
    r.unknown_keys(scope, {"protected_roles", "protected_tags", "own_role_arns"}, "scope")
    approval = r.section(raw, "approval", "")
    r.unknown_keys(approval, {"allow_self_approval", "approvers"}, "approval")
    slack = r.section(raw, "slack", "")
    r.unknown_keys(slack, {"mode", "review_channel", "digests", "http"}, "slack")
    http = r.section(slack, "http", "slack")
    r.unknown_keys(http, {"host", "port"}, "slack.http")
    http_host = r.get(http, "host", "slack.http", str, "127.0.0.1")
    if not _listen_address(http_host):
        r.problem("slack.http.host", f"expected an IP address or a host name to listen on, got {http_host!r}")
        http_host = "127.0.0.1"
    http_port = r.int_range(http, "port", "slack.http", 3000, 1, 65535)
    digests: list[Digest] = []
    for i, item in enumerate(r.get(slack, "digests", "slack", list, [])):
        p = f"slack.digests[{i}]"
        if not isinstance(item, dict):
            r.problem(p, f"expected a mapping, got {_kind(item)}")
            continue
        r.unknown_keys(item, {"channel", "kind", "cron"}, p)
        kind = r.choice(item, "kind", p, ("daily", "weekly"), "daily")
        digests.append(Digest(
            channel=r.pattern(item, "channel", p, SLACK_CHANNEL, "a Slack channel ID like C012ABCDEF",
                              required=True) or "",
            kind=kind,
            cron=r.cron(item, "cron", p, "0 9 * * *" if kind == "daily" else "0 9 * * 1"),
        ))

    sched = r.section(raw, "schedules", "")
    r.unknown_keys(sched, {"ingest", "plan", "expire", "watch", "off_hours"}, "schedules")
    off_hours = None
    oh = r.section(sched, "off_hours", "schedules")
    if oh:
        p = "schedules.off_hours"
        r.unknown_keys(oh, {"start", "end", "timezone"}, p)
        off_hours = OffHours(
            start=r.pattern(oh, "start", p, HHMM, "a time HH:MM", required=True) or "00:00",
            end=r.pattern(oh, "end", p, HHMM, "a time HH:MM", required=True) or "00:00",
            timezone=_timezone(r, oh, p),
        )
    d = Schedules()
    schedules = Schedules(
        ingest=r.cron(sched, "ingest", "schedules", d.ingest),
        plan=r.cron(sched, "plan", "schedules", d.plan),
        expire=r.cron(sched, "expire", "schedules", d.expire),
        watch=r.cron(sched, "watch", "schedules", d.watch),
        off_hours=off_hours,
    )

    backend = r.section(raw, "backend", "")
    r.unknown_keys(backend, {"engine", "access_analyzer"}, "backend")
    engine = r.choice(backend, "engine", "backend", ("local", "access-analyzer"), "local")
    aa_raw = r.section(backend, "access_analyzer", "backend")
    p = "backend.access_analyzer"
    r.unknown_keys(aa_raw, {"trail_arn", "access_role_arn", "max_concurrent", "max_per_day"}, p)
    aa = AccessAnalyzerSettings(
        trail_arn=r.get(aa_raw, "trail_arn", p, str, None, required=engine == "access-analyzer"),
        access_role_arn=r.get(aa_raw, "access_role_arn", p, str, None, required=engine == "access-analyzer"),
        max_concurrent=r.positive_int(aa_raw, "max_concurrent", p, 1),
        max_per_day=r.positive_int(aa_raw, "max_per_day", p, 50),
    )

    apply = r.section(raw, "apply", "")
    r.unknown_keys(apply, {"managed_policy_prefix", "retention_days", "proposal_ttl_days", "watch_days"}, "apply")

    iac_direct_apply, iac_rules = _iac(r, raw, "")
    athena = _athena(r, r.section(raw, "athena", ""))

    cfg = Config(
        path=file,
        db_path=r.get(store, "path", "store", str, "tighten.db"),
        cloudtrail_source=_trail_source(r, trail),
        lookback_days=_lookback_days(r, trail, engine),
        last_accessed_horizon_days=r.int_range(trail, "last_accessed_horizon_days", "cloudtrail", 400, 0, 400,
                                               "IAM keeps 400 days of last-accessed data; 0 turns it off"),
        accounts=tuple(accounts),
        organizations_enabled=r.get(org, "enabled", "organizations", bool, False),
        organizations_role=r.get(org, "role", "organizations", str, "TightenOrgReader"),
        protected_roles=r.checked_list(scope, "protected_roles", "scope", checks.role_reference_problem),
        protected_tags=r.str_list(scope, "protected_tags", "scope") if "protected_tags" in scope
        else ("tighten:protected",),
        own_role_arns=r.checked_list(scope, "own_role_arns", "scope", checks.role_arn_problem),
        allow_self_approval=r.get(approval, "allow_self_approval", "approval", bool, False),
        default_approvers=_approvers(r, approval, "approval"),
        review_channel=r.pattern(slack, "review_channel", "slack", SLACK_CHANNEL,
                                 "a Slack channel ID like C012ABCDEF"),
        slack_mode=r.choice(slack, "mode", "slack", ("socket", "http"), "socket"),
        http_host=http_host,
        http_port=http_port,
        digests=tuple(digests),
        schedules=schedules,
        backend=engine,
        access_analyzer=aa,
        managed_policy_prefix=r.get(apply, "managed_policy_prefix", "apply", str, "tighten-"),
        retention_days=r.positive_int(apply, "retention_days", "apply", 30),
        proposal_ttl_days=r.positive_int(apply, "proposal_ttl_days", "apply", 14),
        watch_days=r.positive_int(apply, "watch_days", "apply", 7),
        allowlist_path=r.get(raw, "allowlist", "", str, None),
        iac_direct_apply=bool(iac_direct_apply),
        iac_rules=iac_rules,
        athena=athena,
    )
    if not raw_accounts and not cfg.organizations_enabled and isinstance(raw.get("accounts", []), list):
        r.problem("accounts", "no account to scan: list at least one (or set organizations.enabled)")
    for i, acct in enumerate(cfg.accounts):
        if acct.id and not cfg.channel_for(acct.id):
            r.problem(f"accounts[{i}].channel", "no review channel: set accounts[].channel or slack.review_channel")
        if acct.id and not cfg.approvers_for(acct.id):
            r.problem(f"accounts[{i}].approvers",
                      "no approvers: set accounts[].approvers or approval.approvers (nobody could approve)")
    if r.problems:
        raise ConfigError(r.problems)
    return cfg


def _trail_source(r: _Reader, trail: dict[str, Any]) -> str | None:
    value = r.get(trail, "source", "cloudtrail", str, None)
    problem = checks.trail_source_problem(value) if value is not None else None
    if problem:
        r.problem("cloudtrail.source", problem)
        return None
    return value


def _lookback_days(r: _Reader, trail: dict[str, Any], engine: str) -> int:
    if engine == "access-analyzer":
        return r.int_range(trail, "lookback_days", "cloudtrail", 90, 1, checks.MAX_ACCESS_ANALYZER_DAYS,
                           "IAM Access Analyzer generates policies from at most 90 days of CloudTrail")
    return r.int_range(trail, "lookback_days", "cloudtrail", 90, 1, checks.MAX_LOOKBACK_DAYS,
                       "a longer window keeps permissions unused for more than a year; see config/README.md")


def _listen_address(host: str) -> bool:
    """An IP address (v4 or v6) or a DNS host name."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(HOSTNAME.match(host)) and len(host) <= 253


def _region(r: _Reader, raw: dict[str, Any], path: str) -> str | None:
    value = r.get(raw, "region", path, str, None)
    problem = checks.region_problem(value) if value is not None else None
    if problem:
        r.problem(_join(path, "region"), problem)
        return None
    return value


def _athena(r: _Reader, raw: dict[str, Any]) -> AthenaConfig:
    p = "athena"
    r.unknown_keys(raw, {"database", "table", "workgroup", "output_location", "catalog", "region", "price_per_tb",
                         "grouping", "days_per_query", "query_timeout_minutes"}, p)
    d = AthenaConfig()
    price = r.get(raw, "price_per_tb", p, (int, float), d.price_per_tb)
    if isinstance(price, bool) or price < 0:
        r.problem(f"{p}.price_per_tb", f"expected a non-negative number of USD, got {price!r}")
        price = d.price_per_tb
    return AthenaConfig(
        database=r.pattern(raw, "database", p, SQL_NAME, "a database name (letters, digits, _)"),
        table=r.pattern(raw, "table", p, SQL_NAME, "a table name (letters, digits, _)", d.table) or d.table,
        workgroup=r.get(raw, "workgroup", p, str, d.workgroup),
        output_location=r.pattern(raw, "output_location", p, S3_URL, "an S3 URL like s3://bucket/prefix/"),
        catalog=r.pattern(raw, "catalog", p, SQL_NAME, "a data catalog name", d.catalog) or d.catalog,
        region=_region(r, raw, p),
        price_per_tb=float(price),
        grouping=r.choice(raw, "grouping", p, ("projected", "full"), d.grouping),
        days_per_query=r.positive_int(raw, "days_per_query", p, d.days_per_query),
        query_timeout_minutes=r.positive_int(raw, "query_timeout_minutes", p, d.query_timeout_minutes),
    )


def _timezone(r: _Reader, raw: dict[str, Any], path: str) -> str:
    value = r.get(raw, "timezone", path, str, "UTC")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        r.problem(_join(path, "timezone"), f"expected an IANA time zone like Europe/Paris, got {value!r}")
        return "UTC"
    return value


def load_config(path: str | Path) -> Config:
    """Read and validate a config file. Relative paths inside it resolve against the file's folder."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read file: {exc.strerror}"]) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError([f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as "
                           "UTF-8"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown position)"
        raise ConfigError([f"{path}: {where}: not valid YAML ({getattr(exc, 'problem', exc)})"]) from exc
    if raw is None:
        raise ConfigError([f"{path}: (top level): the file is empty; start from config/tighten.example.yaml"])
    problems: list[str] = []
    try:
        cfg = parse_config(raw, str(path))
    except ConfigError as exc:
        problems = list(exc.problems)
    problems += [f"{path}: {key}: {problem}" for key, problem in checks.environment_problems(raw, path.parent)]
    if problems:
        raise ConfigError(problems)
    base = path.parent
    updates: dict[str, Any] = {}
    if cfg.allowlist_path and not Path(cfg.allowlist_path).is_absolute():
        updates["allowlist_path"] = str(base / cfg.allowlist_path)
    if updates:
        from dataclasses import replace

        cfg = replace(cfg, **updates)
    return cfg
