//! Fuzzes the IDX parser (src/data/idx.rs) with what a damaged or hostile file could hold,
//! raw and through the gzip decoder as `data::read_file` reads a `.gz`.
//!
//! Beyond "no panic, no hang, no allocation past the bound", it checks the parser's
//! promises: what it accepts has exactly the shape its header states, labels are below 10,
//! and encoding the result gives back the input byte for byte.
//!
//! Run from the repository root (cargo install cargo-fuzz; stable Rust is enough with
//! RUSTC_BOOTSTRAP=1). ASan's quarantine is cut to 64 MB, or it alone passes the RSS limit:
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 ASAN_OPTIONS=quarantine_size_mb=64 cargo fuzz run idx \
//!     fuzz/corpus/idx fuzz/seeds -- -runs=1000000 -max_len=4096 -timeout=10 \
//!     -rss_limit_mb=256 -malloc_limit_mb=128 -print_final_stats=1
//! ```
//!
//! `fuzz/seeds` holds one valid file of each kind, raw and gzipped (written by
//! `fuzz/make_seeds.py`), so the fuzzer starts past the headers.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/data/idx.rs"]
mod idx;

fuzz_target!(|data: &[u8]| {
    check(data);
    match idx::read_limited(flate2::read::GzDecoder::new(data), 0) {
        Ok(bytes) => {
            assert!(bytes.len() as u64 <= idx::MAX_FILE_BYTES);
            check(&bytes);
        }
        Err(err) => {
            let msg = err.to_string();
            assert!(
                msg.starts_with("is corrupt: ") || msg.starts_with("could not be read: "),
                "{msg}"
            );
        }
    }
});

/// Parses `bytes` as both kinds of IDX file and checks what each accepts.
fn check(bytes: &[u8]) {
    match idx::parse_images(bytes) {
        Ok(pixels) => {
            assert_eq!(pixels.len() % (idx::SIDE * idx::SIDE), 0);
            assert_eq!(idx::encode_images(pixels), bytes);
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
    match idx::parse_labels(bytes) {
        Ok(labels) => {
            assert!(labels.iter().all(|&l| (l as usize) < idx::NUM_CLASSES));
            assert_eq!(idx::encode_labels(labels), bytes);
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
}
