"""The self-signed certificate for `python app.py --ssl`: made once, names this machine,
checked by a real TLS handshake."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading

import pytest
from cryptography import x509

from voiceqna.tls import ensure_certificate, machine_names


def san_of(path) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(a) for a in san.get_values_for_type(x509.IPAddress)}


def test_made_once_in_the_data_folder_and_reused(tmp_path):
    cert, key = ensure_certificate(tmp_path, None, None)
    assert cert.parent == key.parent == tmp_path / "tls"
    first = (cert.read_bytes(), key.read_bytes())

    again = ensure_certificate(tmp_path, None, None)

    assert again == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == first
    assert key.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only


def test_names_localhost_loopback_and_this_machine(tmp_path):
    cert, _ = ensure_certificate(tmp_path, None, None)
    dns, ips = san_of(cert)
    assert {"localhost", socket.gethostname()} <= dns
    assert {"127.0.0.1", "::1"} <= ips
    assert set(machine_names()[1]) <= ips
    expires = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc
    assert expires - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=365)


def test_made_again_when_it_no_longer_names_this_machine(tmp_path, monkeypatch):
    cert, _ = ensure_certificate(tmp_path, None, None)
    names, addresses = machine_names()
    monkeypatch.setattr("voiceqna.tls.machine_names", lambda: (names + ["new-name.lan"], addresses))

    ensure_certificate(tmp_path, None, None)

    assert "new-name.lan" in san_of(cert)[0]


def test_a_key_that_does_not_match_is_replaced(tmp_path):
    cert, key = ensure_certificate(tmp_path, None, None)
    other = ensure_certificate(tmp_path / "other", None, None)[1]
    key.write_bytes(other.read_bytes())  # as if a start was interrupted between the two writes

    ensure_certificate(tmp_path, None, None)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)  # raises if the pair does not match


def test_a_browser_style_client_completes_a_handshake_for_127_0_0_1(tmp_path):
    cert, key = ensure_certificate(tmp_path, None, None)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        with server_context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(cert))  # trust it, then check the name
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.recv(2) == b"ok"
    thread.join(timeout=10)
    listener.close()


def test_your_own_certificate_is_used_as_given(tmp_path):
    cert, key = ensure_certificate(tmp_path / "made", None, None)
    assert ensure_certificate(tmp_path / "unused", str(cert), str(key)) == (cert, key)
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize("certfile, keyfile, message", [
    ("cert.pem", None, "both --ssl-certfile and --ssl-keyfile"),
    ("missing-cert.pem", "missing-key.pem", "does not exist"),
])
def test_wrong_certificate_options_say_what_to_fix(tmp_path, certfile, keyfile, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        ensure_certificate(tmp_path, str(tmp_path / certfile), keyfile and str(tmp_path / keyfile))


def test_a_planted_symlink_does_not_receive_the_private_key(tmp_path):
    """Another local user who can write the data folder plants symlinks where the key's
    temporary file used to go (a name made of the process id): the key must not be written
    through them, and the target must stay as it was."""
    import os

    target = tmp_path / "attacker-owned.txt"
    target.write_text("untouched")
    folder = tmp_path / "data" / "tls"
    folder.mkdir(parents=True)
    for name in ("selfsigned-key.pem", "selfsigned-cert.pem"):
        (folder / f".{name}.{os.getpid()}.tmp").symlink_to(target)

    cert, key = ensure_certificate(tmp_path / "data", None, None)

    assert target.read_text() == "untouched"
    assert not key.is_symlink() and b"PRIVATE KEY" in key.read_bytes()
    assert key.stat().st_mode & 0o077 == 0
