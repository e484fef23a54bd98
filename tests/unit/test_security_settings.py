"""TLS and per-role settings, the client TLS context, the role permissions (vectors), and the
mapping of the broker's refusals and TLS failures onto our errors."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest
from rstream import exceptions as rs_exc

from cluster.users import role_permissions, role_users
from superticks.errors import ConfigError, PermissionDenied, TlsError
from superticks.settings import TLS_NODES, ConnectionSettings, NodeAddress, Role, load_settings
from superticks.streams import _Access, _mapped
from superticks.tls import client_context
from trading.strategy import checkpoint_stream


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SUPERTICKS_"):
            monkeypatch.delenv(name)


# --- settings ---------------------------------------------------------------------------------
def test_tls_switches_the_default_nodes_to_the_tls_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERTICKS_TLS", "true")
    assert ConnectionSettings().nodes == TLS_NODES
    assert [n.port for n in TLS_NODES] == [5562, 5563, 5564]
    assert ConnectionSettings(tls=False).nodes[0].port == 5552


def test_nodes_given_with_tls_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERTICKS_TLS", "1")
    monkeypatch.setenv("SUPERTICKS_NODES", "rabbit.example:5551")
    assert ConnectionSettings().nodes == (NodeAddress(host="rabbit.example", port=5551),)


def test_a_missing_ca_file_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SUPERTICKS_TLS", "true")
    monkeypatch.setenv("SUPERTICKS_CA_FILE", str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigError, match=r"SUPERTICKS_CA_FILE: .*nope\.pem is not a readable"):
        load_settings()


def test_a_client_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ValueError, match="both cert_file and key_file"):
        ConnectionSettings(tls=True, cert_file=cert)


def test_each_role_uses_its_own_user_when_set_else_the_admin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUPERTICKS_PRODUCER_USERNAME", "feed")
    monkeypatch.setenv("SUPERTICKS_PRODUCER_PASSWORD", "s3cret")
    settings = ConnectionSettings()
    producer = settings.for_role(Role.PRODUCER)
    assert (producer.username, producer.password.get_secret_value()) == ("feed", "s3cret")
    assert settings.for_role("worker").username == "superticks"
    assert settings.for_role(Role.ADMIN).username == "superticks"


def test_a_role_username_without_its_password_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUPERTICKS_WORKER_USERNAME", "w")
    with pytest.raises(ConfigError, match="worker_username is set without worker_password"):
        load_settings()


def test_cluster_up_users_default_to_superticks_role_names() -> None:
    users = {u.role: u for u in role_users(ConnectionSettings())}
    assert users[Role.PRODUCER].username == "superticks-producer"
    assert users[Role.WORKER].password == "superticks-worker"
    assert users[Role.MONITORING].tags == "monitoring"
    assert users[Role.PRODUCER].tags == ""


# --- TLS context ------------------------------------------------------------------------------
def test_no_tls_context_without_tls() -> None:
    assert client_context(ConnectionSettings()) is None


def test_the_tls_context_verifies_the_server_and_its_name() -> None:
    context = client_context(ConnectionSettings(tls=True))
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert client_context(ConnectionSettings(tls=True)) is context  # built once


def test_a_ca_file_that_is_not_pem_is_a_config_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ConfigError, match="holds no PEM CA certificate"):
        client_context(ConnectionSettings(tls=True, ca_file=bogus))


# --- role permissions (vectors) ---------------------------------------------------------------
def _allows(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None


CHECKPOINTS = checkpoint_stream("trading_audit_log")  # the strategy's checkpoints


@pytest.mark.parametrize(
    ("role", "kind", "allowed", "refused"),
    [
        (Role.PRODUCER, "write", ["ticks-0", "ticks-17"], ["ticks-dlq", "ticks", "o-0", "t-0x"]),
        (Role.PRODUCER, "read", ["ticks", "ticks-0", "ticks-2"], ["ticks-dlq", "other-1", "tick"]),
        (Role.PRODUCER, "configure", [], ["ticks", "ticks-0", "ticks-dlq"]),
        (Role.WORKER, "read", ["ticks", "ticks-12", "ticks-dlq"], ["o-0", "ticks-dlqx", "ticks-"]),
        (Role.WORKER, "write", ["ticks-dlq"], ["ticks-0", "ticks", "other-dlq"]),
        (Role.WORKER, "configure", [], ["ticks", "ticks-0", "ticks-dlq"]),
        (Role.MONITORING, "read", [], ["ticks", "ticks-0", "ticks-dlq"]),
        (Role.MONITORING, "write", [], ["ticks", "ticks-0", "ticks-dlq"]),
        (Role.MONITORING, "configure", [], ["ticks", "ticks-0", "ticks-dlq"]),
        (Role.ADMIN, "configure", ["ticks", "ticks-0", "anything"], []),
        (Role.STRATEGY, "write", ["ticks-dlq", "trading_audit_log", CHECKPOINTS],
            ["ticks-0", "trading_audit_logx", "market_data_nyse-0", "trading_audit_log_c"]),
        (Role.STRATEGY, "read", ["ticks", "ticks-1", "ticks-dlq", "trading_audit_log",
            CHECKPOINTS], ["market_data_nyse-0", "other-1"]),
        (Role.STRATEGY, "configure", [], ["ticks", "trading_audit_log", CHECKPOINTS]),
        (Role.AGGREGATOR, "write", ["ticks-0", "ticks-2", "market_data_nyse-dlq"],
            ["ticks-dlq", "market_data_nyse-0", "market_data_nyse", "trading_audit_log"]),
        (Role.AGGREGATOR, "read", ["ticks", "ticks-0", "market_data_nyse", "market_data_cboe-1",
            "market_data_nyse-dlq"], ["ticks-dlq", "trading_audit_log", "market_data_", "other-0"]),
        (Role.AGGREGATOR, "configure", [], ["ticks", "market_data_nyse", "market_data_nyse-0"]),
    ],
)  # fmt: skip
def test_role_permissions_match_exactly_their_streams(
    role: Role, kind: str, allowed: list[str], refused: list[str]
) -> None:
    pattern = getattr(role_permissions(role, "ticks"), kind)
    assert [n for n in allowed if _allows(pattern, n)] == allowed
    assert [n for n in refused if _allows(pattern, n)] == []


def test_super_stream_names_are_escaped_in_the_permissions() -> None:
    write = role_permissions(Role.PRODUCER, "fx.eu").write
    assert _allows(write, "fx.eu-3")
    assert not _allows(write, "fxXeu-3")


# --- error mapping ----------------------------------------------------------------------------
def test_access_refused_names_user_permission_resource_and_the_fix() -> None:
    settings = ConnectionSettings(username="feed")
    with (
        pytest.raises(PermissionDenied) as refused,
        _mapped("declaring producer p on ticks-0", _Access(settings, "write", "ticks-0")),
    ):
        raise rs_exc.AccessRefused("16")
    message = str(refused.value)
    assert "user 'feed' has no write permission on 'ticks-0' in vhost '/'" in message
    assert "rabbitmqctl set_permissions -p / feed" in message
    assert refused.value.permission == "write"


def test_a_certificate_the_ca_does_not_sign_is_a_tls_error_naming_the_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    settings = ConnectionSettings.model_construct(tls=True, ca_file=ca)
    failure = ssl.SSLCertVerificationError(1, "certificate verify failed")
    failure.verify_message = "self-signed certificate in certificate chain"
    with (
        pytest.raises(TlsError, match=rf"SUPERTICKS_CA_FILE={re.escape(str(ca))} is the CA"),
        _mapped("connecting to localhost:5562", settings=settings),
    ):
        raise failure
