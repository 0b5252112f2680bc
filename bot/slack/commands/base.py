"""What every ``/tighten`` subcommand handler gets and returns."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient

from bot.slack.context import AppContext
from bot.slack.escaping import code
from bot.store.roles import KnownRole


@dataclass(frozen=True)
class CommandRequest:
    ctx: AppContext
    client: WebClient
    user_id: str
    channel_id: str | None
    args: list[str]


class CommandError(Exception):
    """Bad input or a refusal: shown to the user as an ephemeral message (with usage when given)."""

    def __init__(self, problem: str, usage: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.usage = usage


def resolve_role(req: CommandRequest, name_or_arn: str, usage: str) -> KnownRole:
    """The one known role named ``name_or_arn``; unknown or ambiguous names are a CommandError."""
    found = req.ctx.roles.find(name_or_arn)
    if not found:
        raise CommandError(
            f"Unknown role {code(name_or_arn)}: Tighten does not know a role with this "
            f"{'ARN' if name_or_arn.startswith('arn:') else 'name'} (roles come from the inventory; "
            "check the spelling or use the full ARN).", usage)
    if len(found) > 1:
        arns = ", ".join(f"{code(r.arn)}" for r in found[:5])
        raise CommandError(f"Role name {code(name_or_arn)} exists in {len(found)} accounts; use the ARN: {arns}.", usage)
    return found[0]


def expect_args(req: CommandRequest, minimum: int, maximum: int, usage: str, what: str) -> list[str]:
    if len(req.args) < minimum:
        raise CommandError(f"Missing {what}.", usage)
    if len(req.args) > maximum:
        extra = " ".join(req.args[maximum:])
        raise CommandError(f"Too many arguments: {code(extra)} was not expected.", usage)
    return req.args
