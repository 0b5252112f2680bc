from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.demo.fake_slack import FakeSlackApi


def test_records_calls_threads_uploads_and_faults() -> None:
    with FakeSlackApi(usergroups={"S0APPROVE": ["U0ALICE1"]}) as fake:
        client = WebClient(token="xoxb-test", base_url=fake.base_url)
        assert client.auth_test()["user_id"] == fake.bot_user_id
        posted = client.chat_postMessage(channel="C0REVIEW1", text="hi")
        client.chat_update(channel="C0REVIEW1", ts=posted["ts"], text="decided")
        assert fake.messages[("C0REVIEW1", posted["ts"])]["text"] == "decided"
        up = client.files_upload_v2(channel="C0REVIEW1", thread_ts=posted["ts"], content="{}", filename="p.json")
        assert fake.uploads[up["file"]["id"]] == b"{}"
        assert fake.calls_to("files.completeUploadExternal")[0].params["thread_ts"] == posted["ts"]
        assert client.usergroups_users_list(usergroup="S0APPROVE")["users"] == ["U0ALICE1"]
        fake.fail_next("chat.postMessage", 1, status=503)
        with pytest.raises(SlackApiError) as err:
            client.chat_postMessage(channel="C0REVIEW1", text="x")
        assert err.value.response.status_code == 503
        assert client.chat_postMessage(channel="C0REVIEW1", text="x")["ok"]
        assert len(fake.wait_for("chat.postMessage", 2)) == 2


def test_unauthenticated_and_unknown_methods_fail() -> None:
    with FakeSlackApi() as fake:
        with pytest.raises(SlackApiError):
            WebClient(base_url=fake.base_url).auth_test()
        with pytest.raises(SlackApiError):
            WebClient(token="xoxb-test", base_url=fake.base_url).api_call("nope.nothing")
