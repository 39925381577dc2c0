"""What the original cloud image processor did, fed from memory instead of
MQTT: one boto3 put_object per message, in order, keys test<N>.png.

Usage: original_s3.py ENDPOINT BUCKET COUNT SIZE   (keys from the AWS_* env)
Prints the objects/s of its put loop alone (interpreter start-up and the
boto3 import are not counted there).
"""
import os
import sys
import time

import boto3
from botocore.config import Config

endpoint, bucket, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    config=Config(s3={"addressing_style": "path"}),
)
payload = bytes(i % 251 for i in range(size))
started = time.monotonic()
for n in range(count):
    s3.put_object(Bucket=bucket, Key=f"test{n}.png", Body=payload)
print(f"{count / (time.monotonic() - started):.1f}")
