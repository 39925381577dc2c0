#!/usr/bin/env python3
"""The original system's forwarder: subscribe to `image` on the edge broker,
republish every message to the cloud broker at QoS 1 (paho-mqtt)."""
import sys, threading
import paho.mqtt.client as mqtt

edge_port, cloud_port = int(sys.argv[1]), int(sys.argv[2])

# Persistent sessions (fixed ids, clean_session False), as flowrun's links
# use: what is published while the forwarder is down waits for it.
def client(cid):
    try:
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=cid, clean_session=False)
    except AttributeError:
        return mqtt.Client(client_id=cid, clean_session=False)

cloud = client("paho-forwarder-pub")
cloud.connect("127.0.0.1", cloud_port)
cloud.loop_start()
edge = client("paho-forwarder-sub")

def on_connect(c, userdata, flags, rc):
    c.subscribe("image", qos=1)

def on_message(c, userdata, msg):
    cloud.publish(msg.topic, msg.payload, qos=1)

edge.on_connect = on_connect
edge.on_message = on_message
edge.connect("127.0.0.1", edge_port)
edge.loop_forever()
