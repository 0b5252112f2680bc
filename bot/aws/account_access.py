"""Per-account IAM clients for the jobs, from the configuration: the applier role for changes and the reader
role for IAM's service-last-accessed data, each assumed with cached, renewed credentials."""

from __future__ import annotations

import threading
from typing import Any

from bot.config import Config


def last_accessed_access(cfg: Config) -> Any:
    """``account -> IAM client`` as the account's reader role (``accounts[].reader_role``), for IAM's
    service-last-accessed data that scans read (``config/iam/reader.json``)."""
    from bot.aws.sessions import AccountSessions

    sessions = AccountSessions(session_name="tighten-serve-reader")
    lock = threading.Lock()

    def reader_for(account_id: str) -> Any:
        account = cfg.account(account_id)
        if account is None:
            raise KeyError(f"account {account_id} is not in {cfg.path}")
        with lock:
            return sessions.reader_iam(account)

    return reader_for


def aws_access(cfg: Config) -> Any:
    """``account -> IAM client`` for the jobs: boto3's default credential chain, then the account's applier
    role (``accounts[].applier_role``) assumed with cached, renewed credentials. (``AWS_ENDPOINT_URL`` points
    boto3 at an emulator in tests.)"""
    from bot.aws.sessions import AccountSessions

    sessions = AccountSessions(session_name="tighten-serve")
    lock = threading.Lock()

    def iam_for(account_id: str) -> Any:
        account = cfg.account(account_id)
        if account is None:
            raise KeyError(f"account {account_id} is not in {cfg.path}")
        with lock:  # the worker and the scheduler's threads share the credential cache
            return sessions.applier_iam(account)

    return iam_for
