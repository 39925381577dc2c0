//! What a stored face must be: a grayscale PNG that decodes, under a key
//! made of its identity.

use std::collections::BTreeSet;

/// Decodes `bytes` as a PNG and checks it is 8-bit grayscale with pixels.
pub fn assert_gray_png(key: &str, bytes: &[u8]) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{key} is not a PNG: {e}"));
    let info = reader.info();
    assert_eq!(
        (info.color_type, info.bit_depth),
        (png::ColorType::Grayscale, png::BitDepth::Eight),
        "{key} is not an 8-bit grayscale PNG"
    );
    assert!(info.width > 0 && info.height > 0, "{key} has no pixels");
    let mut pixels = vec![0; reader.output_buffer_size()];
    reader
        .next_frame(&mut pixels)
        .unwrap_or_else(|e| panic!("{key} does not decode: {e}"));
}

/// The (frame, face) of a key ending in `<capture ms>-<frame>-<face>.png`
/// and starting with `prefix`.
pub fn identity(prefix: &str, key: &str) -> (u64, u64) {
    let name = key
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(".png"))
        .unwrap_or_else(|| panic!("{key} is not {prefix}<capture ms>-<frame>-<face>.png"));
    let numbers: Vec<u64> = name
        .split('-')
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("{key}: `{n}` is not a number"))
        })
        .collect();
    assert_eq!(
        numbers.len(),
        3,
        "{key}: expected <capture ms>-<frame>-<face>"
    );
    (numbers[1], numbers[2])
}

/// Checks that `keys` are `faces` distinct faces of Megamind.avi's 270 frames.
pub fn assert_one_object_per_face(prefix: &str, keys: &[String], faces: u64) {
    let identities: BTreeSet<(u64, u64)> = keys.iter().map(|k| identity(prefix, k)).collect();
    assert_eq!(
        identities.len() as u64,
        faces,
        "{} objects for {faces} faces; distinct (frame, face): {}",
        keys.len(),
        identities.len()
    );
    assert_eq!(keys.len() as u64, faces);
    assert!(identities.iter().all(|(frame, _)| *frame < 270));
}
