#!/usr/bin/env python3
"""Informal end-to-end rate: N mails over C parallel SMTP connections into a running
`postwire dev` (with its sink), timing until the sink has printed N verified deliveries.

usage: e2e_rate.py SMTP_PORT SINK_LOG N C
"""
import smtplib, sys, threading, time

port, log, n, c = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
body = ("From: bench@example.com\r\nTo: support@acme.test\r\nSubject: bench {i}\r\n"
        "Message-ID: <bench-{i}-{t}@example.com>\r\n\r\n" + "x" * 2000 + "\r\n")
t0 = time.time()

def worker(k):
    s = smtplib.SMTP("127.0.0.1", port)
    for i in range(k, n, c):
        s.sendmail("bench@example.com", ["support@acme.test"], body.format(i=i, t=t0))
    s.quit()

threads = [threading.Thread(target=worker, args=(k,)) for k in range(c)]
for t in threads: t.start()
for t in threads: t.join()
accepted = time.time() - t0
while True:
    with open(log, errors="replace") as f:
        done = sum(1 for line in f if line.startswith("verified"))
    if done >= n: break
    if time.time() - t0 > 300: break
    time.sleep(0.05)
total = time.time() - t0
print(f"{n} mails: accepted in {accepted:.2f}s ({n/accepted:.0f}/s), "
      f"delivered {done} in {total:.2f}s ({done/total:.0f}/s end to end)")
