"""What the original's filesystem variant did: subscribe with paho-mqtt and,
in on_message, write each message as a plain file test<N>.png into the
(mounted) bucket directory. Persistent session as in original_s3.py.

Stops after COUNT messages and prints the monotonic clock of its last
write, then its peak RSS in KiB (VmHWM).

Usage: original_fs.py PORT TOPIC CLIENT_ID ROOT COUNT
"""
import os
import sys
import time

import paho.mqtt.client as mqtt

port, topic, client_id = int(sys.argv[1]), sys.argv[2], sys.argv[3]
root, count = sys.argv[4], int(sys.argv[5])
stored = 0


def on_connect(client, userdata, flags, rc):
    print("connected", flush=True)


def on_message(client, userdata, msg):
    global stored
    with open(os.path.join(root, f"test{stored}.png"), "wb") as f:
        f.write(msg.payload)
    stored += 1
    if stored == count:
        print(time.monotonic(), flush=True)
        client.disconnect()


client = mqtt.Client(client_id=client_id, clean_session=False)
client.on_connect = on_connect
client.on_message = on_message
client.connect("127.0.0.1", port)
client.loop_forever()
with open("/proc/self/status") as f:
    print(next(line.split()[1] for line in f if line.startswith("VmHWM")))
