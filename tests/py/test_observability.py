"""Observability against the real binary: one trace per mail across ingest, process and
deliver (in one process and as separate processes), received by an OTLP/HTTP receiver the
test runs; and Prometheus counters that move after a delivery."""

from __future__ import annotations

import signal
import smtplib
import time
import urllib.request

import pytest

from otlp_receiver import OtlpReceiver
from support import PIPELINE, Process, attach_logs, child_env, dev_config, free_port, postwire_path


@pytest.fixture
def otlp():
    r = OtlpReceiver()
    yield r
    r.close()


def otel_env(otlp, **extra):
    return child_env(RUST_LOG="info", OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url, OTEL_BSP_SCHEDULE_DELAY="100", **extra)


def send(port):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as c:
        c.sendmail("a@example.com", ["support@acme.test"], b"Subject: traced\r\n\r\nx\r\n")


def check_one_trace(otlp, receiver, services=None):
    mail_id = receiver.requests[0].json()["mail_id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        publish = [s for s in otlp.named("ingest.publish") if s[5].get("mail_id") == mail_id]
        process = [s for s in otlp.named("process") if s[5].get("mail_id") == mail_id]
        deliver = [s for s in otlp.named("deliver") if s[5].get("mail_id") == mail_id]
        if publish and process and deliver:
            break
        time.sleep(0.1)
    assert publish and process and deliver, f"spans missing: {otlp.spans}"
    (p_svc, _, p_trace, p_id, p_parent, *_), = publish
    (r_svc, _, r_trace, r_id, r_parent, r_attrs, *_), = process
    d_svc, _, d_trace, _, d_parent, d_attrs, *_ = deliver[0]
    assert p_trace == r_trace == d_trace, "one trace per mail"
    assert r_parent == p_id, "process continues the ingest span"
    assert d_parent == r_id, "each attempt continues the process span"
    assert r_attrs.get("tenant") == "acme" and r_attrs.get("stage") == "process"
    # Integers arrive as int or string values depending on their width; compare as text.
    assert (str(d_attrs.get("attempt")), str(d_attrs.get("http.status")), d_attrs.get("route")) == ("1", "204", "support")
    smtp = [s for s in otlp.named("smtp.transaction") if s[3] == p_parent]
    assert smtp and str(smtp[0][5].get("smtp.reply_code")) == "250", "the SMTP transaction is the root"
    if services:
        assert (p_svc, r_svc, d_svc) == services


def test_one_trace_per_mail_in_dev(request, tmp_path, nats, receiver, otlp):
    port = free_port()
    cfg = tmp_path / "postwire.toml"
    cfg.write_text(dev_config(nats.url, port, receiver.url()))
    dev = Process("dev", [postwire_path(), "dev", "--config", str(cfg), "--no-sink"], tmp_path, env=otel_env(otlp))
    attach_logs(request, dev)
    try:
        dev.wait_for_port(port)
        send(port)
        receiver.wait_for(1)
    finally:
        dev.stop(signal.SIGINT)
    check_one_trace(otlp, receiver)


def test_one_trace_across_separate_processes(request, tmp_path, nats, receiver, otlp):
    """The context crosses both NATS hops: MAIL to the worker, and OUTBOX to the deliver
    worker (the worker's first attempt is off here, so the delivery takes that hop)."""
    port = free_port()
    cfg = tmp_path / "postwire.toml"
    cfg.write_text(dev_config(nats.url, port, receiver.url(), extra_delivery="inline_attempt_ms = 0"))
    procs = [Process(role, [postwire_path(), role, "--config", str(cfg)], tmp_path, env=otel_env(otlp))
             for role in ("ingest", "worker", "deliver")]
    for p in procs:
        attach_logs(request, p)
    try:
        procs[0].wait_for_port(port)
        # Both workers are up: their durable consumers exist.
        deadline = time.monotonic() + 30
        while not all(consumer in nats.streams().get(stream, {}).get("consumers", {})
                      for stream, consumer in PIPELINE):
            assert time.monotonic() < deadline, f"the workers did not start: {nats.streams()}"
            time.sleep(0.05)
        send(port)
        receiver.wait_for(1)
    finally:
        for p in procs:
            p.stop(signal.SIGTERM)
    check_one_trace(otlp, receiver, services=("postwire-ingest", "postwire-worker", "postwire-deliver"))


def test_metrics_move_after_a_delivery(request, tmp_path, nats, receiver):
    port, mport = free_port(), free_port()
    cfg = tmp_path / "postwire.toml"
    cfg.write_text(dev_config(nats.url, port, receiver.url()) + f'\n[metrics]\nlisten = "127.0.0.1:{mport}"\n')
    dev = Process("dev", [postwire_path(), "dev", "--config", str(cfg), "--no-sink"], tmp_path, env=child_env(RUST_LOG="info"))
    attach_logs(request, dev)
    try:
        dev.wait_for_port(port)
        dev.wait_for_port(mport)
        scrape = lambda: urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read().decode()  # noqa: E731
        before = scrape()
        assert 'postwire_deliveries_total{class="2xx"}' not in before
        send(port)
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.ehlo()
            c.mail("a@example.com")
            c.rcpt("nobody@acme.test")
        receiver.wait_for(1)
        deadline = time.monotonic() + 10
        text = scrape()
        # The worker's first attempt counts the 2xx before its stage is finished and counted:
        # wait for both.
        moved = ('postwire_deliveries_total{class="2xx"} 1',
                 'postwire_stage_duration_seconds_count{stage="process"} 1')
        while not all(m in text for m in moved) and time.monotonic() < deadline:
            time.sleep(0.1)
            text = scrape()
        assert 'postwire_smtp_messages_total{result="accepted",code="250"} 1' in text, text
        assert 'postwire_smtp_refusals_total{code="550"} 1' in text, text
        assert 'postwire_deliveries_total{class="2xx"} 1' in text, text
        assert 'postwire_stage_duration_seconds_count{stage="process"} 1' in text, text
        assert 'postwire_stream_messages{stream="DLQ"} 0' in text, text
        assert 'postwire_consumer_pending_messages{consumer="deliver"}' in text, text
    finally:
        dev.stop(signal.SIGINT)
