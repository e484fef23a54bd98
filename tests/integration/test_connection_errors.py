"""Connection errors the broker decides, told apart by type, not by message text."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from superticks.errors import AuthenticationFailed
from superticks.settings import ConnectionSettings
from superticks.streams import Admin

pytestmark = pytest.mark.cluster


async def test_wrong_credentials_raise_authentication_failed_at_once(
    connection: ConnectionSettings,
) -> None:
    wrong = connection.model_copy(update={"password": SecretStr("not-the-password")})
    with pytest.raises(AuthenticationFailed, match="SUPERTICKS_PASSWORD") as raised:
        async with Admin(wrong):
            pass
    assert "no node answered" not in str(raised.value)  # not retried on the other nodes
