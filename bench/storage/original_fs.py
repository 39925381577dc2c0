"""What the original's filesystem variant did, fed from memory instead of
MQTT: one plain file write per message into the (mounted) bucket directory.

Usage: original_fs.py ROOT COUNT SIZE [PREFIX]
Prints the objects/s of its write loop alone.
"""
import os
import sys
import time

root, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
prefix = sys.argv[4] if len(sys.argv) > 4 else "test"
payload = bytes(i % 251 for i in range(size))
started = time.monotonic()
for n in range(count):
    with open(os.path.join(root, f"{prefix}{n}.png"), "wb") as f:
        f.write(payload)
print(f"{count / (time.monotonic() - started):.1f}")
