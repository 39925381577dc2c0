#!/usr/bin/env python3
"""Does the broker keep a persistent session's subscription across its own
restart? Runs a mosquitto with persistence on a free port, subscribes with a
persistent session (clean session off) without subscribing again after
reconnecting, as a client trusting `session present` does, restarts the
broker, publishes, and says what arrived. mosquitto 2.0.11 keeps a plain
subscription (`faces/#`) but not a shared one (`$share/g/faces/#`).

    /usr/bin/python3 bench/reliability/shared_subscription_restart.py
"""
import socket
import subprocess
import tempfile
import time

import paho.mqtt.client as mqtt


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trial(data, port, subscription):
    conf = f"{data}/mosquitto.conf"
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                f"persistence true\npersistence_location {data}/\nuser root\n")

    def broker():
        proc = subprocess.Popen(["mosquitto", "-c", conf], stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        return proc

    server = broker()
    got, session = [], []
    sub = mqtt.Client(client_id="sub", clean_session=False)
    sub.on_connect = lambda c, u, flags, rc: session.append(flags.get("session present"))
    sub.on_message = lambda c, u, m: got.append(m.payload.decode())
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    time.sleep(0.3)
    sub.subscribe(subscription, 1)
    time.sleep(0.3)
    pub = mqtt.Client(client_id="pub")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    pub.publish("faces/a", "before the restart", qos=1).wait_for_publish()
    time.sleep(0.3)
    server.terminate()
    server.wait()
    server = broker()
    time.sleep(2)  # both clients reconnect
    pub.publish("faces/b", "after the restart", qos=1).wait_for_publish()
    time.sleep(1)
    for client in (sub, pub):
        client.loop_stop()
    server.terminate()
    server.wait()
    print(f"{subscription}: session present after the restart: {bool(session[-1])}; received: {got}")


for subscription in ("faces/#", "$share/g/faces/#"):
    with tempfile.TemporaryDirectory() as data:
        trial(data, free_port(), subscription)
