"""An embedded AWS (moto server on 127.0.0.1) for the demo and the tests. Never used against real AWS."""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class EmbeddedAws:
    server: object  # moto.server.ThreadedMotoServer
    endpoint_url: str

    def reset(self) -> None:
        """Forget every resource (moto's reset API); managed policies are reloaded."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=180):  # noqa: S310 - loopback only; a reset reloads every managed policy
            pass

    def stop(self) -> None:
        self.server.stop()  # type: ignore[attr-defined]


def start_embedded_aws(load_managed_policies: bool = True) -> EmbeddedAws:
    """Start moto's threaded server on a free loopback port, with fake credentials in the environment."""
    if load_managed_policies:
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return EmbeddedAws(server=server, endpoint_url=f"http://{host}:{port}")
