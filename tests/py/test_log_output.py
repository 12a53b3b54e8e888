"""What `make run` prints: postwire's log lines carry no ANSI colour codes when its output is
not a terminal (a file, a pipe, a process supervisor's log)."""

from __future__ import annotations

from mails import utf8_message


def test_no_colour_codes_when_the_output_is_not_a_terminal(postwire_dev, receiver):
    postwire_dev.send(utf8_message("plain log"))
    receiver.wait_for(1)
    log = postwire_dev.process.stderr_path.read_text(errors="replace")
    assert "INFO" in log, log[-2000:]  # there are log lines to look at
    assert "\x1b[" not in log, "escape codes in the log:\n" + repr(log[-1000:])
