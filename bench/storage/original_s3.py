"""What the original cloud image processor did: subscribe to the topic with
paho-mqtt and, in on_message, put each message as an object with boto3
(keys test<N>.png). The persistent session (the bench registers it first)
is the one change: without it a message published before this script
subscribed would be lost.

Stops after COUNT messages (the original ran forever) and prints the
monotonic clock of its last put, then its peak RSS in KiB (VmHWM).

Usage: original_s3.py PORT TOPIC CLIENT_ID ENDPOINT BUCKET COUNT   (keys from the AWS_* env)
"""
import os
import sys
import time

import boto3
import paho.mqtt.client as mqtt
from botocore.config import Config

port, topic, client_id = int(sys.argv[1]), sys.argv[2], sys.argv[3]
endpoint, bucket, count = sys.argv[4], sys.argv[5], int(sys.argv[6])
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    config=Config(s3={"addressing_style": "path"}),
)
stored = 0


def on_connect(client, userdata, flags, rc):
    print("connected", flush=True)


def on_message(client, userdata, msg):
    global stored
    s3.put_object(Bucket=bucket, Key=f"test{stored}.png", Body=msg.payload)
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
