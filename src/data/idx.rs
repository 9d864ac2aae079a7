//! The IDX format as Fashion-MNIST uses it: parsing, with every header field checked
//! before anything is sized from it; encoding; and reading a whole file with a bound.
//!
//! This file depends on nothing but `std` and `anyhow` (no tch), so the fuzz target in
//! `fuzz/` compiles it on its own with `#[path]`.
//!
//! Every error message here is a predicate ("is corrupt: …", "is not an IDX image
//! file: …") that the caller completes with the file's name in front, so the user reads
//! "`<file>` is corrupt: …".

use std::io::{self, Read};

use anyhow::{anyhow, bail, ensure, Result};

/// Side of the square images.
pub const SIDE: usize = 28;
/// Number of classes; a label must be below it.
pub const NUM_CLASSES: usize = 10;
/// The magic number of an IDX file of unsigned bytes in 3 dimensions (images).
pub const IMAGE_MAGIC: u32 = 2051;
/// The magic number of an IDX file of unsigned bytes in 1 dimension (labels).
pub const LABEL_MAGIC: u32 = 2049;
/// No IDX file of the dataset decompresses to more than this (the training images are
/// 47,040,016 bytes); it bounds what a corrupt or hostile gzip stream can make us allocate.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads everything from `reader` (a file, or a gzip decoder over one), refusing more than
/// any dataset file holds.
///
/// The error says what went wrong as a predicate on the file: a gzip stream that ends
/// early "is corrupt: it ends early …", one that does not decode "is corrupt: it does not
/// decompress …"; any other I/O failure "could not be read: …". `expected_len` is the
/// room to reserve at once (a hint, capped at the limit).
pub fn read_limited(reader: impl Read, expected_len: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(expected_len.min(MAX_FILE_BYTES as usize) + 1);
    if let Err(e) = reader.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes) {
        return Err(match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                anyhow!("is corrupt: it ends early ({e}); was it cut short?")
            }
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                anyhow!("is corrupt: it does not decompress ({e})")
            }
            _ => anyhow!("could not be read: {e}"),
        });
    }
    ensure!(
        bytes.len() as u64 <= MAX_FILE_BYTES,
        "is corrupt: it holds more than {MAX_FILE_BYTES} bytes, more than any Fashion-MNIST file"
    );
    Ok(bytes)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// What a wrong magic number most likely means, for the error message.
fn magic_hint(magic: u32) -> &'static str {
    match magic {
        IMAGE_MAGIC => " (an image file's: are the files swapped?)",
        LABEL_MAGIC => " (a label file's: are the files swapped?)",
        0x1f8b_0000..=0x1f8b_ffff => " (a gzip header: name it *.gz)",
        _ => "",
    }
}

/// Parses an IDX image file (magic 2051, n × 28 × 28 bytes) and returns its pixels.
/// The length is checked against the header before anything else is done with it.
pub fn parse_images(bytes: &[u8]) -> Result<&[u8]> {
    ensure!(
        bytes.len() >= 16,
        "is corrupt: {} bytes is shorter than an IDX image header (16 bytes)",
        bytes.len()
    );
    let magic = be_u32(bytes, 0);
    ensure!(
        magic == IMAGE_MAGIC,
        "is not an IDX image file: magic number {magic}{}, expected {IMAGE_MAGIC}",
        magic_hint(magic)
    );
    let (n, rows, cols) = (be_u32(bytes, 4), be_u32(bytes, 8), be_u32(bytes, 12));
    ensure!(
        rows as usize == SIDE && cols as usize == SIDE,
        "holds {rows}×{cols} images; Fashion-MNIST images are {SIDE}×{SIDE}"
    );
    let expected = 16 + n as u64 * (SIDE * SIDE) as u64;
    ensure!(
        bytes.len() as u64 == expected,
        "is corrupt: its header promises {n} images ({expected} bytes) but it has {} bytes",
        bytes.len()
    );
    Ok(&bytes[16..])
}

/// Parses an IDX label file (magic 2049, n bytes, each below 10) and returns its labels.
pub fn parse_labels(bytes: &[u8]) -> Result<&[u8]> {
    ensure!(
        bytes.len() >= 8,
        "is corrupt: {} bytes is shorter than an IDX label header (8 bytes)",
        bytes.len()
    );
    let magic = be_u32(bytes, 0);
    ensure!(
        magic == LABEL_MAGIC,
        "is not an IDX label file: magic number {magic}{}, expected {LABEL_MAGIC}",
        magic_hint(magic)
    );
    let n = be_u32(bytes, 4);
    let expected = 8 + n as u64;
    ensure!(
        bytes.len() as u64 == expected,
        "is corrupt: its header promises {n} labels ({expected} bytes) but it has {} bytes",
        bytes.len()
    );
    let labels = &bytes[8..];
    if let Some(i) = labels.iter().position(|&l| l as usize >= NUM_CLASSES) {
        bail!(
            "holds label {} (example {i}); Fashion-MNIST labels are 0 to {}",
            labels[i],
            NUM_CLASSES - 1
        );
    }
    Ok(labels)
}

/// Encodes an IDX image file; the inverse of [`parse_images`] (tests and tools write
/// synthetic datasets with it).
pub fn encode_images(pixels: &[u8]) -> Vec<u8> {
    let n = (pixels.len() / (SIDE * SIDE)) as u32;
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [IMAGE_MAGIC, n, SIDE as u32, SIDE as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// Encodes an IDX label file; the inverse of [`parse_labels`].
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    for v in [LABEL_MAGIC, labels.len() as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(labels);
    out
}

/// `bytes` gzipped, as the dataset's `.gz` files are (for tests and tools that make them).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes)
        .expect("writing into memory cannot fail");
    enc.finish().expect("writing into memory cannot fail")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn images(n: u32) -> Vec<u8> {
        encode_images(&vec![7u8; n as usize * SIDE * SIDE])
    }

    fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
        read_limited(flate2::read::GzDecoder::new(bytes), 0)
    }

    #[test]
    fn good_files_parse() {
        let bytes = images(3);
        assert_eq!(parse_images(&bytes).unwrap().len(), 3 * 784);
        let labels = encode_labels(&[0, 9, 4]);
        assert_eq!(parse_labels(&labels).unwrap(), &[0, 9, 4]);
    }

    #[test]
    fn bad_magic_is_named() {
        let mut bytes = images(1);
        bytes[3] = 1; // 2049 → a label magic in an image file
        let err = parse_images(&bytes).unwrap_err().to_string();
        assert!(err.contains("magic number 2049"), "{err}");
        assert!(err.contains("swapped"), "{err}");
        let err = parse_labels(&images(1)).unwrap_err().to_string();
        assert!(err.contains("magic number 2051"), "{err}");
    }

    #[test]
    fn truncated_files_are_corrupt() {
        let bytes = images(2);
        let err = parse_images(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("corrupt") && err.contains("2 images"), "{err}");
        let err = parse_images(&bytes[..10]).unwrap_err().to_string();
        assert!(err.contains("shorter than an IDX image header"), "{err}");
        let labels = encode_labels(&[1, 2, 3]);
        let err = parse_labels(&labels[..9]).unwrap_err().to_string();
        assert!(err.contains("3 labels"), "{err}");
    }

    #[test]
    fn a_header_claiming_four_billion_images_is_refused_without_allocating() {
        let mut bytes = images(1);
        bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = parse_images(&bytes).unwrap_err().to_string();
        assert!(err.contains("4294967295 images"), "{err}");
    }

    #[test]
    fn wrong_dimensions_are_named() {
        let mut bytes = images(1);
        bytes[8..12].copy_from_slice(&32u32.to_be_bytes());
        let err = parse_images(&bytes).unwrap_err().to_string();
        assert!(err.contains("32×28"), "{err}");
    }

    #[test]
    fn labels_of_ten_or_more_are_refused() {
        let err = parse_labels(&encode_labels(&[3, 10]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 10 (example 1)"), "{err}");
    }

    #[test]
    fn gzip_streams_decode_and_damaged_ones_are_corrupt() {
        let raw = images(2);
        let gz = gzip(&raw);
        assert_eq!(gunzip(&gz).unwrap(), raw);

        let err = gunzip(&gz[..gz.len() / 2]).unwrap_err().to_string();
        assert!(err.starts_with("is corrupt: it ends early"), "{err}");
        let err = gunzip(&gz[..gz.len() - 3]).unwrap_err().to_string();
        assert!(err.starts_with("is corrupt: it ends early"), "{err}");

        let mut flipped = gz.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        let err = gunzip(&flipped).unwrap_err().to_string();
        assert!(err.starts_with("is corrupt: "), "{err}");

        let err = gunzip(b"not gzip at all").unwrap_err().to_string();
        assert!(
            err.starts_with("is corrupt: it does not decompress (invalid gzip header)"),
            "{err}"
        );
    }

    #[test]
    fn a_gzip_bomb_is_refused_at_the_bound() {
        // 64 MiB + 1 zero bytes compress to about 64 KiB.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            enc.write_all(&zeros).unwrap();
        }
        enc.write_all(&[0]).unwrap();
        let gz = enc.finish().unwrap();
        let err = gunzip(&gz).unwrap_err().to_string();
        assert!(err.contains("more than 67108864 bytes"), "{err}");
    }

    #[test]
    fn other_read_failures_are_not_called_corruption() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let err = read_limited(Failing, 0).unwrap_err().to_string();
        assert_eq!(err, "could not be read: disk on fire");
    }
}
