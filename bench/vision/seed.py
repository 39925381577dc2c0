"""What the original face detector did, for comparison: read the video,
convert to gray, detectMultiScale(gray, 1.3, 5), crop each face from the
gray frame and encode it as PNG (the bytes are discarded, as flowrun's are).

With --scale 0.5 it first downscales the gray frame with INTER_AREA, as
flowrun's `detect_scale` does, and crops from the full-resolution frame;
--min-neighbors then gives the detectMultiScale setting flowrun uses at that
scale (3 at 0.5), so both find the same boxes.
Prints one line: frames, faces, seconds, frames/s.
"""
import argparse
import time

import cv2

CASCADE = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

parser = argparse.ArgumentParser()
parser.add_argument("video")
parser.add_argument("--passes", type=int, default=1)
parser.add_argument("--scale", type=float, default=1.0)
parser.add_argument("--min-neighbors", type=int, default=5)
args = parser.parse_args()

started = time.monotonic()
classifier = cv2.CascadeClassifier(CASCADE)
frames = faces = 0
for _ in range(args.passes):
    capture = cv2.VideoCapture(args.video)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames += 1
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if args.scale < 1.0:
            small = cv2.resize(gray, None, fx=args.scale, fy=args.scale,
                               interpolation=cv2.INTER_AREA)
            boxes = [[round(v / args.scale) for v in box]
                     for box in classifier.detectMultiScale(small, 1.3, args.min_neighbors)]
        else:
            boxes = classifier.detectMultiScale(gray, 1.3, args.min_neighbors)
        for (x, y, w, h) in boxes:
            ok, png = cv2.imencode(".png", gray[y:y + h, x:x + w])
            faces += 1
elapsed = time.monotonic() - started
print(f"{frames} {faces} {elapsed:.3f} {frames / elapsed:.2f}")
