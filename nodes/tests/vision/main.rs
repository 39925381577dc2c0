//! The vision nodes against real data (Debian's opencv-doc examples) and
//! real cascades (opencv-data), run through the real engine, compared with
//! OpenCV called directly on the same frames.

mod camera;
mod common;
mod crop;
mod detect;
mod errors;
mod preview;
mod stills;
mod track;
