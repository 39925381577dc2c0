"""Publishes COUNT distinct payloads of SIZE bytes on TOPIC at QoS 1, as
fast as the broker takes them, and exits once every one is acknowledged.
Prints the monotonic clock (CLOCK_MONOTONIC, shared by every process) of
the first publish, then of the last PUBACK.

Usage: publish.py PORT TOPIC COUNT SIZE
"""
import sys
import threading
import time

import paho.mqtt.client as mqtt

port, topic, count, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
payloads = [f"{n:08}:".encode().ljust(size, bytes([n % 251])) for n in range(count)]
acked = 0
done = threading.Event()


def on_publish(client, userdata, mid):
    global acked
    acked += 1
    if acked == count:
        done.set()


client = mqtt.Client(client_id=f"bench-publisher-{port}-{topic}")
client.max_inflight_messages_set(1000)
client.max_queued_messages_set(0)
client.on_publish = on_publish
client.connect("127.0.0.1", port)
client.loop_start()
first = time.monotonic()
for payload in payloads:
    client.publish(topic, payload, qos=1)
if not done.wait(300):
    sys.exit(f"only {acked}/{count} publishes acknowledged within 300 s")
print(first)
print(time.monotonic())
client.disconnect()
client.loop_stop()
