"""Per-account IAM clients for the jobs, from the configuration: the applier role for changes and the reader
role for IAM's service-last-accessed data, each assumed with cached, renewed credentials."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from bot.config import Config


def _per_account(cfg: Config, session_name: str, client: Callable[[Any, Any], Any]) -> Callable[[str], Any]:
    """``account -> client(sessions, account)`` for the configured accounts; an unknown account is a KeyError.
    The worker and the scheduler's threads share the credential cache, hence the lock."""
    from bot.aws.sessions import AccountSessions

    sessions = AccountSessions(session_name=session_name)
    lock = threading.Lock()

    def for_account(account_id: str) -> Any:
        account = cfg.account(account_id)
        if account is None:
            raise KeyError(f"account {account_id} is not in {cfg.path}")
        with lock:
            return client(sessions, account)

    return for_account


def last_accessed_access(cfg: Config) -> Callable[[str], Any]:
    """``account -> IAM client`` as the account's reader role (``accounts[].reader_role``), for IAM's
    service-last-accessed data that scans read (``config/iam/reader.json``)."""
    return _per_account(cfg, "tighten-serve-reader", lambda sessions, account: sessions.reader_iam(account))


def aws_access(cfg: Config) -> Callable[[str], Any]:
    """``account -> IAM client`` for the jobs: boto3's default credential chain, then the account's applier
    role (``accounts[].applier_role``) assumed with cached, renewed credentials. (``AWS_ENDPOINT_URL`` points
    boto3 at an emulator in tests.)"""
    return _per_account(cfg, "tighten-serve", lambda sessions, account: sessions.applier_iam(account))
